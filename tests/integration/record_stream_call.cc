// record_stream_call: records COUNT facts "step=<i>" on JOB through one RecordStream call to the
// reprod at ADDR, so that tests can make the call as another uid.
//
//   record_stream_call ADDR JOB COUNT
//
// Prints how many records were answered and the call's gRPC status code's number and message on
// one line; exits 0 when the call succeeded, 2 when it ended with an error, 1 on a usage error.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <grpcpp/grpcpp.h>

#include "repro/v1/repro.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: record_stream_call ADDR JOB COUNT\n");
    return 1;
  }
  auto stub = repro::v1::Repro::NewStub(
      grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  auto stream = stub->RecordStream(&context);
  const int count = atoi(argv[3]);
  for (int i = 0; i < count; ++i) {
    repro::v1::RecordRequest request;
    request.set_job(argv[2]);
    repro::v1::Fact* fact = request.add_facts();
    fact->set_key("step");
    fact->set_value(std::to_string(i));
    if (!stream->Write(request)) break;  // the stream ended
  }
  stream->WritesDone();
  int answered = 0;
  for (repro::v1::RecordResponse response; stream->Read(&response);) ++answered;
  grpc::Status status = stream->Finish();
  printf("%d answered, status %d %s\n", answered, static_cast<int>(status.error_code()),
         status.error_message().c_str());
  return status.ok() ? 0 : 2;
}
