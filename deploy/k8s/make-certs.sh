#!/usr/bin/env bash
# Makes the certificates repro needs on Kubernetes with openssl and installs them with kubectl:
#   - a CA (kept in --dir, reused on later runs so that rotating leaves needs no caBundle change);
#   - the webhook's serving certificate for reprod-webhook.<namespace>.svc, as Secret
#     reprod-webhook-tls, and the CA as caBundle of the repro-inject and repro-validate webhook
#     configurations;
#   - the peer certificate (server and client) of every reprod, for
#     *.reprod-peers.<namespace>.svc, as Secret reprod-peer-tls with the CA (mTLS between nodes);
#   - etcd's serving certificate for *.etcd (its members' names), as Secret etcd-tls with the CA,
#     and the passwords of etcd's users root and reprod (made once, kept in --dir), as Secret
#     etcd-auth; then, once etcd runs, turns on its authentication with the role repro limited
#     to /repro/ and the user reprod that has it (README "Cluster mode"), unless it is on already;
# then restarts the webhook Deployment and the DaemonSet, because reprod reads certificates only
# when it starts. Run it after `kubectl apply -k deploy/k8s`, and again to rotate.
#
#   deploy/k8s/make-certs.sh [--namespace repro-system] [--dir ~/.repro-certs/<namespace>]
#                            [--days 365] [--cluster-domain cluster.local] [--no-restart]
#
# --dir holds the CA's key: keep it private (it is made mode 0700). $KUBECTL overrides kubectl.
set -euo pipefail

namespace=repro-system
dir=
days=365
domain=cluster.local
restart=1
kubectl=${KUBECTL:-kubectl}

while (($#)); do
  case "$1" in
    --namespace) namespace=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --cluster-domain) domain=$2; shift 2 ;;
    --no-restart) restart=0; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "make-certs.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done

dir=${dir:-$HOME/.repro-certs/$namespace}
umask 077
mkdir -p "$dir"
cd "$dir"

# new_key NAME: a fresh P-256 key NAME.key
new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
}

# leaf NAME CN EXTENDED_KEY_USAGE SAN...: NAME.crt signed by the CA
leaf() {
  local name=$1 cn=$2 eku=$3; shift 3
  local sans
  sans=$(printf 'DNS:%s,' "$@"); sans=${sans%,}
  new_key "$name"
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$eku"
    echo "subjectAltName=$sans"
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

if [[ -f ca.key && -f ca.crt ]]; then
  echo "make-certs: reusing the CA in $dir"
else
  new_key ca
  openssl req -x509 -new -key ca.key -subj "/CN=repro CA ($namespace)" -days 3650 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out ca.crt
  echo "make-certs: made a new CA in $dir (keep ca.key private)"
fi

service=reprod-webhook.$namespace.svc
peers=reprod-peers.$namespace.svc
leaf webhook "$service" serverAuth "$service" "$service.$domain"
leaf peer "$peers" serverAuth,clientAuth "*.$peers" "*.$peers.$domain"
leaf etcd "etcd.$namespace.svc" serverAuth "*.etcd" "*.etcd.$namespace.svc" \
  "*.etcd.$namespace.svc.$domain"
for user in root reprod; do
  [[ -s etcd-$user.password ]] || openssl rand -hex 24 > "etcd-$user.password"
done

"$kubectl" -n "$namespace" create secret tls reprod-webhook-tls --cert=webhook.crt \
  --key=webhook.key --dry-run=client -o yaml | "$kubectl" apply -f -
"$kubectl" -n "$namespace" create secret generic reprod-peer-tls --from-file=tls.crt=peer.crt \
  --from-file=tls.key=peer.key --from-file=ca.crt=ca.crt --dry-run=client -o yaml |
  "$kubectl" apply -f -
"$kubectl" -n "$namespace" create secret generic etcd-tls --from-file=tls.crt=etcd.crt \
  --from-file=tls.key=etcd.key --from-file=ca.crt=ca.crt --dry-run=client -o yaml |
  "$kubectl" apply -f -
"$kubectl" -n "$namespace" create secret generic etcd-auth \
  --from-file=reprod-password=etcd-reprod.password --dry-run=client -o yaml | "$kubectl" apply -f -

# etcdctl ARGS...: etcdctl in the first etcd member, over TLS.
etcdctl() {
  "$kubectl" -n "$namespace" exec etcd-0 -c etcd -- etcdctl --endpoints=https://etcd-0.etcd:2379 \
    --cacert=/etc/etcd/tls/ca.crt "$@"
}
"$kubectl" -n "$namespace" rollout status statefulset/etcd --timeout=600s
root_password=$(cat etcd-root.password)
if etcdctl --user="root:$root_password" auth status 2>/dev/null | grep -q 'Status: true'; then
  echo "make-certs: etcd authentication is on already"
else
  etcdctl user add root --new-user-password="$root_password" --interactive=false
  etcdctl user grant-role root root
  etcdctl role add repro
  etcdctl role grant-permission repro --prefix=true readwrite /repro/
  etcdctl user add reprod --new-user-password="$(cat etcd-reprod.password)" --interactive=false
  etcdctl user grant-role reprod repro
  etcdctl auth enable
  echo "make-certs: etcd authentication on: user reprod has role repro (readwrite /repro/)"
fi

ca_bundle=$(base64 -w0 < ca.crt)
for configuration in mutatingwebhookconfiguration/repro-inject \
                     validatingwebhookconfiguration/repro-validate; do
  "$kubectl" patch "$configuration" --type=json \
    -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca_bundle\"}]"
done

if ((restart)); then
  "$kubectl" -n "$namespace" rollout restart deployment/reprod-webhook daemonset/reprod
fi
echo "make-certs: certificates installed in namespace $namespace; valid for $days days"
