#!/usr/bin/env bash
# Local mode in front of the Lambda binaries: dynalite as DynamoDB, each
# function's bootstrap (built for this machine) under the Lambda Runtime
# Interface Emulator, and local mode invoking them for the WebSocket routes
# and the publish API's routes and forwarding its Invoke API to them; they
# push back through local mode's Management API; PublishFunction hands the
# fan-outs of owners above HANDOFF_ABOVE (100) connections to FanoutFunction,
# as in the cloud. What the cloud runs, on one machine.
#
#   infra/emulator/run.sh --api-key mykey=acct_42      # Ctrl-C stops it all
#
# Arguments go to local mode. Ports, all on 127.0.0.1: WSNOTIFY_ADDR
# (127.0.0.1:8000), DYNALITE_PORT (4567), FUNCTION_PORTS (9001-9007, one per
# function) and RUNTIME_PORTS (9101-9107, the emulators' runtime APIs).
# Whatever it started is stopped when it ends, however it ends: a failed
# start, a stopped local mode, Ctrl-C or SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/../.."

addr=${WSNOTIFY_ADDR:-127.0.0.1:8000}
dynalite_port=${DYNALITE_PORT:-4567}
read -r -a function_ports <<< "${FUNCTION_PORTS:-9001 9002 9003 9004 9005 9006 9007}"
read -r -a runtime_ports <<< "${RUNTIME_PORTS:-9101 9102 9103 9104 9105 9106 9107}"
# FanoutFunction last: PublishFunction, before it, invokes it, and local
# mode does not.
functions=(connect:ConnectFunction disconnect:DisconnectFunction default:DefaultFunction
           jobevents:JobEventsFunction s3upload:S3UploadFunction publish:PublishFunction
           fanout:FanoutFunction)
fanout_port=${function_ports[$((${#functions[@]} - 1))]}
if [ "${#function_ports[@]}" -ne "${#functions[@]}" ] || [ "${#runtime_ports[@]}" -ne "${#functions[@]}" ]; then
  echo "FUNCTION_PORTS and RUNTIME_PORTS need ${#functions[@]} ports each" >&2
  exit 2
fi

# The binaries go to build/emulator/ (git-ignored), apart from make build's
# linux/arm64 bootstraps. go build leaves a binary that is up to date with
# its sources as it is, so a second run links nothing; runs that start
# together take turns through the lock file.
bin=build/emulator/$(go env GOOS)_$(go env GOARCH)
mkdir -p "$bin"
cleanup() {
  local pids
  pids=$(jobs -p)
  if [ -n "$pids" ]; then
    kill $pids 2>/dev/null || true
    wait $pids 2>/dev/null || true
  fi
}
trap cleanup EXIT
# Exiting from these traps runs the EXIT trap; without them SIGTERM would end
# the shell at once and leave its background jobs running.
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_port waits until something accepts connections on a loopback port.
wait_port() {
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

(
  flock 9
  make --no-print-directory tools build LAMBDA_ARCH="$(go env GOARCH)" BUILD_DIR="$bin"
  go build -o "$bin/local" ./infra/local
) 9>"$bin/.lock"

node infra/node/node_modules/dynalite/cli.js --host 127.0.0.1 --port "$dynalite_port" \
  --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 &
wait_port "$dynalite_port"

export TABLE_NAME=wsnotify DYNAMODB_ENDPOINT="http://127.0.0.1:$dynalite_port" \
  MANAGEMENT_API_ENDPOINT="http://$addr/local" AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
endpoints=()
for i in "${!functions[@]}"; do
  dir=${functions[$i]%%:*} name=${functions[$i]#*:} port=${function_ports[$i]}
  extra=()
  if [ "$name" = PublishFunction ]; then
    # The Lambda SDK's Invoke goes to FanoutFunction's emulator, whose
    # function is named "function".
    extra=(FANOUT_FUNCTION_NAME=function HANDOFF_ABOVE="${HANDOFF_ABOVE:-100}"
           AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$fanout_port")
  fi
  env "${extra[@]}" .tools/bin/aws-lambda-rie --runtime-interface-emulator-address "127.0.0.1:$port" \
    --runtime-api-address "127.0.0.1:${runtime_ports[$i]}" "$bin/$dir/bootstrap" &
  if [ "$name" != FanoutFunction ]; then
    endpoints+=("--function-endpoint" "$name=http://127.0.0.1:$port/2015-03-31/functions/function/invocations")
  fi
done
for port in "${function_ports[@]}"; do
  wait_port "$port"
done

# In the background, so that a signal reaches the traps above at once.
"$bin/local" --addr "$addr" --dynamodb-endpoint "http://127.0.0.1:$dynalite_port" \
  --table wsnotify --create-table "${endpoints[@]}" "$@" &
wait $!
