--[[ repro's submit-time check for Slurm (job_submit/lua): refuses every job that is not pinned,
with a message the submitter sees. Put it beside slurm.conf as job_submit.lua and set
JobSubmitPlugins=lua. The SPANK plugin (client/slurm/spank_repro.c) puts --repro-job into the job
control environment (REPRO_JOB) and pins with --repro-pin before the job is submitted;
this script then asks reprod (`reproctl admit`) whether that job is pinned.

It runs inside slurmctld for every submission: it refuses, it never drains a node (a failing node
Prolog would). reproctl and reprod's address come from REPRO_CTL and REPRO_ADDR in slurmctld's
environment, else the defaults below. ]]

local REPROCTL = os.getenv("REPRO_CTL") or "/usr/local/bin/reproctl"
local REPRO_ADDR = os.getenv("REPRO_ADDR")

-- REPRO_JOB of the job control environment the SPANK plugin set (job_desc.spank_job_env holds
-- "NAME=VALUE" strings; prologs see the same variables prefixed with SPANK_), or nil.
local function repro_job(job_desc)
  local env = job_desc.spank_job_env
  if type(env) ~= "table" then return nil end
  for _, entry in pairs(env) do
    local value = type(entry) == "string" and entry:match("^REPRO_JOB=(.*)$")
    if value and value ~= "" then return value end
  end
  return nil
end

function slurm_job_submit(job_desc, part_list, submit_uid)
  local job = repro_job(job_desc)
  if job == nil then
    slurm.log_user("repro: this cluster runs only pinned jobs: submit with --repro-job=JOB " ..
                   "--repro-pin=DATASET@VERSION (or pin JOB first with `reproctl pin`)")
    return slurm.ERROR
  end
  if not job:match("^[%w][%w._-]*$") or #job > 128 then
    slurm.log_user("repro: --repro-job=%s is not a valid job id", job)
    return slurm.ERROR
  end
  local addr = REPRO_ADDR and ("--addr '" .. REPRO_ADDR:gsub("'", "") .. "' ") or ""
  local status = os.execute(REPROCTL .. " " .. addr .. "admit " .. job .. " >/dev/null 2>&1")
  if status ~= 0 and status ~= true then
    slurm.log_user("repro: job %s is not pinned (or reprod cannot be reached): add " ..
                   "--repro-pin=DATASET@VERSION, or run `reproctl pin %s DATASET@VERSION` first",
                   job, job)
    return slurm.ERROR
  end
  return slurm.SUCCESS
end

function slurm_job_modify(job_desc, job_rec, part_list, modify_uid)
  return slurm.SUCCESS
end

return slurm.SUCCESS
