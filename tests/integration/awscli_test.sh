#!/bin/sh
# awscli_test.sh - proves the EC2 emulator's fidelity with the real AWS CLI
# (Debian's awscli, /usr/bin/aws): every command runs against the emulator
# on a loopback port with dummy credentials, and its output is checked.
# Usage: awscli_test.sh EC2_EMULATOR DATA_DIR. Exit 77 (skipped) without
# /usr/bin/aws; never contacts AWS.
#
# Starting the CLI (python and its models) takes seconds on a busy machine,
# so most commands run in one long-lived process of the same CLI code that
# /usr/bin/aws runs (awscli_runner.py); /usr/bin/aws itself runs the first
# command and those that need other credentials.
set -u
EMU=$1
DATA=$2
HERE=$(cd "$(dirname "$0")" && pwd)
AWS=${AWS_CLI:-/usr/bin/aws}
[ -x "$AWS" ] || { echo "skip: $AWS not installed (apt-get install awscli)"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 missing"; exit 77; }
# The interpreter /usr/bin/aws names, so the runner imports the same CLI.
AWS_PY=$(sed -n '1s/^#! *//p' "$AWS")

WORK=$(mktemp -d /tmp/pv-awscli-XXXXXX)
# The emulator, like EC2, refuses a launch template it does not know: seed
# the one the create-fleet case names. Without EC2's buckets: this test is
# about the CLI's requests and answers, and ~35 RunInstances in a row on a
# quick machine emptied the RunInstances bucket (5 at 2/s) past the CLI's
# retries (a CI rehearsal failed on it); throttling has its own tests
# (test_aws_emulator, aws_chaos).
LT_SEEDED=lt-0123456789abcdef0
SSM_AL2023=/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64
"$EMU" --port 0 --port-file "$WORK/port" --boot-ms 0 --no-throttle \
	--launch-template "$LT_SEEDED:provisio-cli-seeded:ami-0abc1234:t3.micro" \
	--ssm-parameter "$SSM_AL2023=ami-0a1b2c3d4e5f60718" >"$WORK/emu.log" 2>&1 &
EMU_PID=$!
RUNNER_PID=
cleanup() {
	kill "$EMU_PID" $RUNNER_PID 2>/dev/null
	wait "$EMU_PID" $RUNNER_PID 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
i=0
# the emulator writes its port once it listens (a 120 s safety bound)
while [ ! -s "$WORK/port" ] && [ $i -lt 12000 ]; do sleep 0.01; i=$((i + 1)); done
[ -s "$WORK/port" ] || { echo "FAIL - the emulator did not start: $(cat "$WORK/emu.log")"; exit 1; }
PORT=$(cat "$WORK/port")
URL="http://127.0.0.1:$PORT"

# Dummy credentials only; no profile, no IMDS, no proxy, no pager.
export HOME="$WORK" AWS_ACCESS_KEY_ID=AKIDEXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_SESSION_TOKEN AWS_PROFILE http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
export NO_PROXY=127.0.0.1

mkfifo "$WORK/cli.req" "$WORK/cli.rc"
"$AWS_PY" "$HERE/awscli_runner.py" "$WORK/cli.req" "$WORK/cli.rc" "$WORK/cli.out" "$WORK/cli.err" &
RUNNER_PID=$!

FAILS=0
# Set inside the cases' && chains: a failed case leaves them empty (set -u).
SP_IDS= SP1= SP2= SIRS= TOKEN= RP= SFR= SF_IDS= NOW= SR= SR_IDS= FM= FM_IDS= FM_NOW= FR= AG= ST= MX= MXSPOT= MX2= LTI=
ok() { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; FAILS=$((FAILS + 1)); }
# runner ARGS...: one request to the runner; its stdout, stderr, exit code.
# The FIFOs are opened under `timeout` so that a runner that died fails the
# test instead of hanging it (a safety net, not a time limit on commands).
runner() {
	timeout 120 sh -c 'f=$1; shift; printf "%s\n" "$@" >"$f"' sh "$WORK/cli.req" "$@" &&
		cli_rc=$(timeout 120 sh -c 'read -r rc <"$1" && echo "$rc"' sh "$WORK/cli.rc") ||
		{ echo "awscli_runner.py is gone" >&2; return 255; }
	cat "$WORK/cli.out"
	cat "$WORK/cli.err" >&2
	return "$cli_rc"
}
# ec2 ARGS...: `aws ec2 ARGS...` in the runner
ec2() { runner --endpoint-url "$URL" --output json ec2 "$@"; }
# ec2_exec ARGS...: the same through /usr/bin/aws (a process of its own)
ec2_exec() { "$AWS" --endpoint-url "$URL" --output json ec2 "$@"; }
# jcheck FILE PYTHON-EXPR: the expression, over the JSON in FILE as `d`, is true
jcheck() { runner @py "$1" "$2"; }
# jget FILE PYTHON-EXPR: prints the expression's value
jget() { runner @py "$1" "$2"; }
# admin PATH JSON: POST to the emulator's admin endpoint, prints its answer
admin() { runner @post "$URL$1" "$2"; }
# fails CODE ARGS...: `aws ec2 ARGS...` exits 254 (a service error) naming CODE
fails() {
	want=$1
	shift
	ec2 "$@" >/dev/null 2>"$WORK/err"
	rc=$?
	[ $rc -eq 254 ] && grep -q "($want)" "$WORK/err"
}

# describe-regions, by /usr/bin/aws and by the runner: the same answer
if ec2_exec describe-regions >"$WORK/regions.json" 2>"$WORK/err" &&
	jcheck "$WORK/regions.json" "'us-east-1' in [r['RegionName'] for r in d['Regions']]"; then
	ok "describe-regions lists us-east-1 (/usr/bin/aws)"
else bad "describe-regions: $(cat "$WORK/err")"; fi
if ec2 describe-regions >"$WORK/regions2.json" 2>"$WORK/err" && cmp -s "$WORK/regions.json" "$WORK/regions2.json"; then
	ok "describe-regions through the runner prints what /usr/bin/aws printed"
else bad "describe-regions (runner): $(cat "$WORK/err")"; fi

# run-instances with tags, user data and a client token
if ec2 run-instances --image-id ami-12345678 --count 2 --instance-type t3.micro --client-token abc \
	--tag-specifications 'ResourceType=instance,Tags=[{Key=Name,Value=web 1},{Key=env,Value=a&b=c}]' \
	--user-data 'hello world' >"$WORK/run.json" 2>"$WORK/err" &&
	jcheck "$WORK/run.json" "len(d['Instances'])==2 and d['Instances'][0]['State']['Name'] in ('pending','running') and {'Key':'env','Value':'a&b=c'} in d['Instances'][0]['Tags'] and d['Instances'][0]['InstanceType']=='t3.micro' and d['ReservationId'].startswith('r-')"; then
	ok "run-instances launches 2 tagged instances"
else bad "run-instances: $(cat "$WORK/err")"; fi
ID1=$(jget "$WORK/run.json" "d['Instances'][0]['InstanceId']")
ID2=$(jget "$WORK/run.json" "d['Instances'][1]['InstanceId']")

# The member names the CLI printed for our XML include every one it printed
# for the hand-made reference response.
if jcheck "$WORK/run.json" "set(json.load(open('$DATA/ec2-responses/RunInstances.awscli-2.9.19.json'))['Instances'][0]) - {'ClientToken'} <= set(d['Instances'][0])"; then
	ok "run-instances output has every member of the reference output"
else bad "run-instances output lacks reference members"; fi

# idempotency: same token and parameters -> same instances; other parameters -> mismatch
if ec2 run-instances --image-id ami-12345678 --count 2 --instance-type t3.micro --client-token abc \
	--tag-specifications 'ResourceType=instance,Tags=[{Key=Name,Value=web 1},{Key=env,Value=a&b=c}]' \
	--user-data 'hello world' >"$WORK/run2.json" 2>"$WORK/err" &&
	jcheck "$WORK/run2.json" "[i['InstanceId'] for i in d['Instances']]==['$ID1','$ID2']"; then
	ok "run-instances with the same ClientToken returns the first reservation"
else bad "run-instances replay: $(cat "$WORK/err")"; fi
ec2 run-instances --image-id ami-12345678 --count 3 --instance-type t3.micro --client-token abc >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q IdempotentParameterMismatch "$WORK/err"; then
	ok "run-instances with the same ClientToken and other parameters: IdempotentParameterMismatch"
else bad "idempotent mismatch: rc=$rc $(cat "$WORK/err")"; fi

# describe-instances by ids, by tag filter, and paginated by the CLI
# (--page-size sends MaxResults=5 and follows NextToken)
if ec2 describe-instances --instance-ids "$ID1" "$ID2" >"$WORK/desc.json" 2>"$WORK/err" &&
	jcheck "$WORK/desc.json" "sorted(i['InstanceId'] for r in d['Reservations'] for i in r['Instances'])==sorted(['$ID1','$ID2']) and d['Reservations'][0]['Instances'][0]['State']['Name']=='running'"; then
	ok "describe-instances by ids"
else bad "describe-instances: $(cat "$WORK/err")"; fi
if ec2 describe-instances --filters 'Name=tag:Name,Values=web 1' Name=instance-state-name,Values=running,pending \
	>"$WORK/filt.json" 2>"$WORK/err" &&
	jcheck "$WORK/filt.json" "sum(len(r['Instances']) for r in d['Reservations'])==2"; then
	ok "describe-instances with tag and state filters"
else bad "describe-instances filters: $(cat "$WORK/err")"; fi
ec2 run-instances --image-id ami-12345678 --count 7 --instance-type t3.small >/dev/null 2>&1
if ec2 describe-instances --page-size 5 >"$WORK/page.json" 2>"$WORK/err" &&
	jcheck "$WORK/page.json" "sum(len(r['Instances']) for r in d['Reservations'])==9"; then
	ok "describe-instances pages through NextToken (9 instances, 5 a page)"
else bad "describe-instances pagination: $(cat "$WORK/err")"; fi
ec2 describe-instances --instance-ids i-0123456789abcdef0 >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q "InvalidInstanceID.NotFound" "$WORK/err"; then
	ok "describe-instances of an unknown id: InvalidInstanceID.NotFound"
else bad "unknown id: rc=$rc $(cat "$WORK/err")"; fi

# terminate-instances, its dry run, and terminating twice
ec2 terminate-instances --instance-ids "$ID1" --dry-run >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q DryRunOperation "$WORK/err"; then
	ok "terminate-instances --dry-run: DryRunOperation"
else bad "dry run: rc=$rc $(cat "$WORK/err")"; fi
if ec2 terminate-instances --instance-ids "$ID1" >"$WORK/term.json" 2>"$WORK/err" &&
	jcheck "$WORK/term.json" "d['TerminatingInstances'][0]['InstanceId']=='$ID1' and d['TerminatingInstances'][0]['PreviousState']['Name']=='running' and d['TerminatingInstances'][0]['CurrentState']['Name'] in ('shutting-down','terminated')"; then
	ok "terminate-instances"
else bad "terminate-instances: $(cat "$WORK/err")"; fi
if ec2 terminate-instances --instance-ids "$ID1" >/dev/null 2>"$WORK/err"; then
	ok "terminate-instances of a terminated instance succeeds"
else bad "terminate twice: $(cat "$WORK/err")"; fi

# create-fleet (instant)
if ec2 create-fleet --type instant \
	--launch-template-configs '[{"LaunchTemplateSpecification":{"LaunchTemplateId":"'"$LT_SEEDED"'","Version":"1"},"Overrides":[{"InstanceType":"t3.micro"}]}]' \
	--target-capacity-specification TotalTargetCapacity=2,DefaultTargetCapacityType=on-demand \
	>"$WORK/fleet.json" 2>"$WORK/err" &&
	jcheck "$WORK/fleet.json" "d['FleetId'].startswith('fleet-') and d['Errors']==[] and len(d['Instances'][0]['InstanceIds'])==2 and d['Instances'][0]['Lifecycle']=='on-demand'"; then
	ok "create-fleet instant launches 2"
else bad "create-fleet: $(cat "$WORK/err")"; fi

# launch templates that do not exist: a request error (exit 254, the code on
# stderr), nothing launched. lt-0badc0ffee0000000 is well-formed (lt- and 17
# hex digits) so the answer is NotFound, not a malformed id.
LT_UNKNOWN=lt-0badc0ffee0000000
ec2 run-instances --launch-template LaunchTemplateId=$LT_UNKNOWN >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q "InvalidLaunchTemplateId.NotFound" "$WORK/err"; then
	ok "run-instances with an unknown launch template id: InvalidLaunchTemplateId.NotFound"
else bad "run-instances unknown launch template: rc=$rc $(cat "$WORK/err")"; fi
ec2 run-instances --launch-template LaunchTemplateName=no-such-template >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q "InvalidLaunchTemplateName.NotFoundException" "$WORK/err"; then
	ok "run-instances with an unknown launch template name: InvalidLaunchTemplateName.NotFoundException"
else bad "run-instances unknown launch template name: rc=$rc $(cat "$WORK/err")"; fi
ec2 create-fleet --type instant \
	--launch-template-configs '[{"LaunchTemplateSpecification":{"LaunchTemplateId":"'"$LT_UNKNOWN"'","Version":"1"},"Overrides":[{"InstanceType":"t3.micro"}]}]' \
	--target-capacity-specification TotalTargetCapacity=1,DefaultTargetCapacityType=on-demand >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q "InvalidLaunchTemplateId.NotFound" "$WORK/err"; then
	ok "create-fleet with an unknown launch template id: InvalidLaunchTemplateId.NotFound"
else bad "create-fleet unknown launch template: rc=$rc $(cat "$WORK/err")"; fi
ec2 run-instances --launch-template LaunchTemplateId=$LT_SEEDED,Version=2 >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q "InvalidLaunchTemplateId.VersionNotFound" "$WORK/err"; then
	ok "run-instances with a launch template version that does not exist: InvalidLaunchTemplateId.VersionNotFound"
else bad "run-instances unknown version: rc=$rc $(cat "$WORK/err")"; fi
if ec2 run-instances --launch-template LaunchTemplateName=provisio-cli-seeded,Version='$Latest' \
	>"$WORK/seeded.json" 2>"$WORK/err" &&
	jcheck "$WORK/seeded.json" "len(d['Instances'])==1 and d['Instances'][0]['ImageId']=='ami-0abc1234' and d['Instances'][0]['InstanceType']=='t3.micro'"; then
	ok "run-instances from a seeded launch template by name launches with its image and type"
else bad "run-instances seeded template: $(cat "$WORK/err")"; fi

# create-launch-template (LaunchTemplateData.* with lists and tag specifications,
# as the CLI serialises them), then create-fleet launching from it, the
# duplicate name, describe-launch-templates and delete-launch-template
if ec2 create-launch-template --launch-template-name provisio-cli-lt --client-token lt-abc \
	--launch-template-data '{"ImageId":"ami-0abc1234","InstanceType":"t3.small","KeyName":"key-1","SecurityGroupIds":["sg-1","sg-2"],"TagSpecifications":[{"ResourceType":"instance","Tags":[{"Key":"team","Value":"red"}]}]}' \
	>"$WORK/lt.json" 2>"$WORK/err" &&
	jcheck "$WORK/lt.json" "d['LaunchTemplate']['LaunchTemplateId'].startswith('lt-') and d['LaunchTemplate']['LaunchTemplateName']=='provisio-cli-lt' and d['LaunchTemplate']['DefaultVersionNumber']==1 and d['LaunchTemplate']['LatestVersionNumber']==1 and 'CreateTime' in d['LaunchTemplate']"; then
	ok "create-launch-template"
else bad "create-launch-template: $(cat "$WORK/err")"; fi
LT=$(jget "$WORK/lt.json" "d['LaunchTemplate']['LaunchTemplateId']" 2>/dev/null)
if ec2 create-launch-template --launch-template-name provisio-cli-lt --client-token lt-abc \
	--launch-template-data '{"ImageId":"ami-0abc1234","InstanceType":"t3.small","KeyName":"key-1","SecurityGroupIds":["sg-1","sg-2"],"TagSpecifications":[{"ResourceType":"instance","Tags":[{"Key":"team","Value":"red"}]}]}' \
	>"$WORK/lt2.json" 2>"$WORK/err" &&
	jcheck "$WORK/lt2.json" "d['LaunchTemplate']['LaunchTemplateId']=='$LT'"; then
	ok "create-launch-template with the same ClientToken returns the same template"
else bad "create-launch-template replay: $(cat "$WORK/err")"; fi
ec2 create-launch-template --launch-template-name provisio-cli-lt \
	--launch-template-data '{"ImageId":"ami-0abc1234"}' >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q "InvalidLaunchTemplateName.AlreadyExistsException" "$WORK/err"; then
	ok "create-launch-template of a used name: InvalidLaunchTemplateName.AlreadyExistsException"
else bad "launch template name reuse: rc=$rc $(cat "$WORK/err")"; fi
if ec2 describe-launch-templates --launch-template-names provisio-cli-lt >"$WORK/lts.json" 2>"$WORK/err" &&
	jcheck "$WORK/lts.json" "[t['LaunchTemplateId'] for t in d['LaunchTemplates']]==['$LT']"; then
	ok "describe-launch-templates by name"
else bad "describe-launch-templates: $(cat "$WORK/err")"; fi
if ec2 create-fleet --type instant \
	--launch-template-configs '[{"LaunchTemplateSpecification":{"LaunchTemplateId":"'"$LT"'","Version":"$Default"}}]' \
	--target-capacity-specification TotalTargetCapacity=1,DefaultTargetCapacityType=on-demand \
	>"$WORK/ltfleet.json" 2>"$WORK/err" &&
	LTI=$(jget "$WORK/ltfleet.json" "d['Instances'][0]['InstanceIds'][0]") &&
	ec2 describe-instances --instance-ids "$LTI" >"$WORK/ltdesc.json" 2>"$WORK/err" &&
	jcheck "$WORK/ltdesc.json" "(lambda i: i['ImageId']=='ami-0abc1234' and i['InstanceType']=='t3.small' and i['KeyName']=='key-1' and {'Key':'team','Value':'red'} in i['Tags'])(d['Reservations'][0]['Instances'][0])"; then
	ok "create-fleet from the launch template launches with its parameters"
else bad "create-fleet from launch template: $(cat "$WORK/err")"; fi
if ec2 delete-launch-template --launch-template-id "$LT" >"$WORK/ltdel.json" 2>"$WORK/err" &&
	jcheck "$WORK/ltdel.json" "d['LaunchTemplate']['LaunchTemplateId']=='$LT'" &&
	! ec2 describe-launch-templates --launch-template-names provisio-cli-lt >/dev/null 2>"$WORK/err" &&
	grep -q "InvalidLaunchTemplateName.NotFoundException" "$WORK/err"; then
	ok "delete-launch-template, then describe: InvalidLaunchTemplateName.NotFoundException"
else bad "delete-launch-template: $(cat "$WORK/err")"; fi

# describe-availability-zones
if ec2 describe-availability-zones >"$WORK/az.json" 2>"$WORK/err" &&
	jcheck "$WORK/az.json" "d['AvailabilityZones'][0]['ZoneName']=='us-east-1a'"; then
	ok "describe-availability-zones"
else bad "describe-availability-zones: $(cat "$WORK/err")"; fi

# ---- fidelity with EC2: filters, NextToken, DryRun, ids, tags, status ---------
# Three instances of a type no other case uses, tagged for the filters.
ec2 run-instances --image-id ami-12345678 --count 3 --instance-type t3.large --client-token fid-1 \
	--tag-specifications 'ResourceType=instance,Tags=[{Key=team,Value=blue-1},{Key=path,Value=a*b}]' \
	>"$WORK/fid.json" 2>"$WORK/err" || bad "run-instances for the fidelity cases: $(cat "$WORK/err")"
F1=$(jget "$WORK/fid.json" "d['Instances'][0]['InstanceId']")
F2=$(jget "$WORK/fid.json" "d['Instances'][1]['InstanceId']")
F3=$(jget "$WORK/fid.json" "d['Instances'][2]['InstanceId']")
# ids FILE: the instance ids describe-instances printed, sorted, one line
ids() { jget "$1" "' '.join(sorted(i['InstanceId'] for r in d['Reservations'] for i in r['Instances']))"; }
# described WANT ARGS...: describe-instances ARGS... prints exactly the ids WANT
described() {
	want=$(printf '%s\n' $1 | sort | tr '\n' ' ' | sed 's/ $//')
	shift
	ec2 describe-instances "$@" >"$WORK/d.json" 2>"$WORK/err" && [ "$(ids "$WORK/d.json")" = "$want" ]
}
if described "$F2" --filters "Name=instance-id,Values=$F2" &&
	described "$F1 $F3" --filters "Name=instance-id,Values=$F1,$F3"; then
	ok "describe-instances filter instance-id"
else bad "filter instance-id: $(cat "$WORK/err")"; fi
if described "$F1 $F2 $F3" --filters 'Name=tag:team,Values=blue-*' &&
	described "$F1 $F2 $F3" --filters 'Name=instance-type,Values=t3.?arge' &&
	described "" --filters 'Name=instance-type,Values=t3.?' &&
	described "$F1 $F2 $F3" --filters '[{"Name":"tag:path","Values":["a\\*b"]}]' &&
	described "$F1 $F2 $F3" --filters '[{"Name":"tag:path","Values":["a?b"]}]' &&
	described "" --filters '[{"Name":"tag:path","Values":["a\\*"]}]' &&
	described "$F1 $F2 $F3" --filters 'Name=tag-value,Values=blue?1' "Name=instance-id,Values=$F1*,$F2,$F3"; then
	ok "filter values with wildcards: * any run, ? one character, \\* a literal *"
else bad "wildcards: $(cat "$WORK/err")"; fi
if fails InvalidParameterValue describe-instances --filters Name=no-such-filter,Values=x &&
	grep -q "The filter 'no-such-filter' is invalid" "$WORK/err"; then
	ok "describe-instances with an unknown filter name: InvalidParameterValue naming it"
else bad "unknown filter: rc=$rc $(cat "$WORK/err")"; fi

# NextToken: opaque, continues the query that made it, refused otherwise
ALL=$(ec2 describe-instances 2>/dev/null >"$WORK/all.json" && jget "$WORK/all.json" "sum(len(r['Instances']) for r in d['Reservations'])")
if ec2 describe-instances --max-results 5 >"$WORK/p1.json" 2>"$WORK/err" &&
	TOKEN=$(jget "$WORK/p1.json" "d['NextToken']") &&
	jcheck "$WORK/p1.json" "not d['NextToken'].isdigit() and len(d['NextToken']) >= 32" &&
	ec2 describe-instances --max-results 1000 --next-token "$TOKEN" >"$WORK/p2.json" 2>"$WORK/err" &&
	jcheck "$WORK/p2.json" "'NextToken' not in d and sum(len(r['Instances']) for r in d['Reservations']) == $ALL - 5"; then
	ok "describe-instances NextToken is opaque and continues the query ($ALL instances: 5 + $((ALL - 5)))"
else bad "NextToken: $(cat "$WORK/err")"; fi
if fails InvalidParameterValue describe-instances --max-results 5 --next-token 5 &&
	grep -q "NextToken is invalid" "$WORK/err" &&
	fails InvalidParameterValue describe-instances --max-results 5 --next-token "${TOKEN}0" &&
	fails InvalidParameterValue describe-instances --max-results 5 --next-token "$TOKEN" \
		--filters Name=instance-type,Values=t3.large; then
	ok "a NextToken not made for the query (made up, edited, another query's): InvalidParameterValue"
else bad "bad NextToken: rc=$rc $(cat "$WORK/err")"; fi

# DryRun answers DryRunOperation only for a request that would succeed
if fails InvalidParameterValue run-instances --dry-run --image-id ami-12345678 --instance-type t3.bogus &&
	grep -q "Invalid value 't3.bogus' for InstanceType" "$WORK/err" &&
	fails DryRunOperation run-instances --dry-run --image-id ami-12345678 --instance-type t3.micro &&
	fails InvalidParameterValue describe-instances --dry-run --filters Name=no-such-filter,Values=x &&
	fails DryRunOperation describe-instances --dry-run; then
	ok "DryRun validates first: an unknown instance type is InvalidParameterValue, a valid request DryRunOperation"
else bad "dry run validation: rc=$rc $(cat "$WORK/err")"; fi

# malformed instance ids
if fails InvalidInstanceID.Malformed describe-instances --instance-ids i-1 &&
	grep -q 'Invalid id: "i-1"' "$WORK/err" &&
	fails InvalidInstanceID.Malformed terminate-instances --instance-ids "$F1" web-1 &&
	fails InvalidInstanceID.Malformed describe-instance-status --instance-ids i-0123456789ABCDEF0; then
	ok "malformed instance ids: InvalidInstanceID.Malformed (describe, terminate, status), nothing terminated"
else bad "malformed ids: rc=$rc $(cat "$WORK/err")"; fi

# ClientToken replay answers with the instances' states now
if ec2 run-instances --image-id ami-12345678 --count 1 --instance-type t3.micro --client-token replay-1 \
	>"$WORK/rp1.json" 2>"$WORK/err" &&
	RP=$(jget "$WORK/rp1.json" "d['Instances'][0]['InstanceId']") &&
	jcheck "$WORK/rp1.json" "d['Instances'][0]['State']['Name'] == 'running'" &&
	ec2 terminate-instances --instance-ids "$RP" >/dev/null 2>"$WORK/err" &&
	ec2 run-instances --image-id ami-12345678 --count 1 --instance-type t3.micro --client-token replay-1 \
		>"$WORK/rp2.json" 2>"$WORK/err" &&
	jcheck "$WORK/rp2.json" "d['Instances'][0]['InstanceId'] == '$RP' and d['Instances'][0]['State']['Name'] in ('shutting-down', 'terminated')"; then
	ok "run-instances replayed by ClientToken after a terminate: the same instance, its state now"
else bad "replay state: $(cat "$WORK/err")"; fi

# tags: create-tags, describe-tags, delete-tags, the aws: prefix, the 50-tag limit
# tagsof ID: the instance's tags as key=value, sorted, one line
tagsof() {
	ec2 describe-tags --filters "Name=resource-id,Values=$1" >"$WORK/t.json" 2>"$WORK/err" &&
		jget "$WORK/t.json" "' '.join(sorted(t['Key'] + '=' + t['Value'] for t in d['Tags']))"
}

if ec2 create-tags --resources "$F1" "$F2" --tags Key=owner,Value=ann Key=stage,Value= 2>"$WORK/err" &&
	[ "$(tagsof "$F1")" = "owner=ann path=a*b stage= team=blue-1" ] &&
	ec2 describe-tags --filters Name=key,Values=owner >"$WORK/t.json" 2>"$WORK/err" &&
	jcheck "$WORK/t.json" "sorted((t['ResourceId'], t['ResourceType'], t['Value']) for t in d['Tags']) == sorted([('$F1', 'instance', 'ann'), ('$F2', 'instance', 'ann')])" &&
	described "$F1 $F2" --filters Name=tag:owner,Values=ann; then
	ok "create-tags on two instances; describe-tags by resource-id and by key; describe-instances by the new tag"
else bad "create-tags: $(cat "$WORK/err")"; fi
if ec2 create-tags --resources "$F1" --tags Key=owner,Value=bob 2>"$WORK/err" &&
	ec2 delete-tags --resources "$F1" "$F2" --tags Key=owner,Value=ann Key=stage 2>"$WORK/err" &&
	[ "$(tagsof "$F1")" = "owner=bob path=a*b team=blue-1" ] &&
	[ "$(tagsof "$F2")" = "path=a*b team=blue-1" ] &&
	ec2 delete-tags --resources "$F3" 2>"$WORK/err" && [ "$(tagsof "$F3")" = "" ] &&
	ec2 delete-tags --resources "$LTI" 2>"$WORK/err" &&
	tagsof "$LTI" | grep -q '^aws:ec2:fleet-id=fleet-[^ ]*$'; then
	ok "create-tags overwrites; delete-tags with a value only if it matches, without one any value; with no tags every tag but EC2's aws: ones"
else bad "delete-tags: $(cat "$WORK/err")"; fi
if fails InvalidParameterValue create-tags --resources "$F1" --tags Key=aws:owner,Value=me &&
	grep -q "Tag keys starting with 'aws:' are reserved for internal use" "$WORK/err" &&
	fails InvalidParameterValue delete-tags --resources "$LTI" --tags Key=aws:ec2:fleet-id &&
	fails InvalidParameterValue run-instances --image-id ami-12345678 --count 1 --instance-type t3.micro \
		--tag-specifications 'ResourceType=instance,Tags=[{Key=AWS:x,Value=y}]' &&
	ec2 describe-instances >"$WORK/all2.json" 2>/dev/null &&
	jcheck "$WORK/all2.json" "sum(len(r['Instances']) for r in d['Reservations']) == $ALL + 1"; then
	ok "the aws: tag prefix is reserved: create-tags, delete-tags, run-instances refused (nothing launched)"
else bad "aws: prefix: rc=$rc $(cat "$WORK/err")"; fi
MANY=$(i=1; while [ $i -le 49 ]; do printf 'Key=k%d,Value=v ' $i; i=$((i + 1)); done)
# shellcheck disable=SC2086 # one word a tag
if fails TagLimitExceeded create-tags --resources "$F2" --tags $MANY &&
	[ "$(tagsof "$F2")" = "path=a*b team=blue-1" ] &&
	fails InvalidInstanceID.NotFound create-tags --resources i-0badc0ffee0000000 --tags Key=a,Value=b &&
	fails InvalidID create-tags --resources sg-12345678 --tags Key=a,Value=b; then
	ok "create-tags past 50 tags: TagLimitExceeded, nothing set; unknown instance NotFound; other resources InvalidID"
else bad "create-tags limits: rc=$rc $(cat "$WORK/err")"; fi
if ec2 describe-tags >"$WORK/tall.json" 2>"$WORK/err" &&
	ec2 describe-tags --page-size 5 >"$WORK/tpaged.json" 2>"$WORK/err" &&
	jcheck "$WORK/tpaged.json" "d['Tags'] == json.load(open('$WORK/tall.json'))['Tags'] and len(d['Tags']) > 10"; then
	ok "describe-tags pages through NextToken (5 a page) to the same tags"
else bad "describe-tags paging: $(cat "$WORK/err")"; fi

# describe-instance-status
RUNNING=$(jget "$WORK/all2.json" "sum(1 for r in d['Reservations'] for i in r['Instances'] if i['State']['Name'] == 'running')")
if ec2 describe-instance-status >"$WORK/st.json" 2>"$WORK/err" &&
	jcheck "$WORK/st.json" "len(d['InstanceStatuses']) == $RUNNING and all(s['InstanceState']['Name'] == 'running' and s['InstanceStatus']['Status'] == 'ok' and s['SystemStatus']['Details'] == [{'Name': 'reachability', 'Status': 'passed'}] and s['AvailabilityZone'].startswith('us-east-1') for s in d['InstanceStatuses'])" &&
	ec2 describe-instance-status --page-size 5 >"$WORK/stp.json" 2>"$WORK/err" &&
	jcheck "$WORK/stp.json" "d['InstanceStatuses'] == json.load(open('$WORK/st.json'))['InstanceStatuses']"; then
	ok "describe-instance-status: the $RUNNING running instances, checks ok / passed; the same through pages of 5"
else bad "describe-instance-status: $(cat "$WORK/err")"; fi
if ec2 describe-instance-status --instance-ids "$ID1" >"$WORK/st1.json" 2>"$WORK/err" &&
	jcheck "$WORK/st1.json" "d['InstanceStatuses'] == []" &&
	ec2 describe-instance-status --instance-ids "$ID1" --include-all-instances >"$WORK/st2.json" 2>"$WORK/err" &&
	jcheck "$WORK/st2.json" "[(s['InstanceId'], s['InstanceState']['Name'], s['InstanceStatus']['Status'], s['SystemStatus']['Status']) for s in d['InstanceStatuses']] == [('$ID1', 'terminated', 'not-applicable', 'not-applicable')]" &&
	ec2 describe-instance-status --filters Name=instance-status.status,Values=ok "Name=availability-zone,Values=us-east-1?" \
		--instance-ids "$F1" "$ID1" >"$WORK/st3.json" 2>"$WORK/err" &&
	jcheck "$WORK/st3.json" "[s['InstanceId'] for s in d['InstanceStatuses']] == ['$F1']"; then
	ok "describe-instance-status: a terminated instance only with --include-all-instances (not-applicable); filters"
else bad "describe-instance-status ids: $(cat "$WORK/err")"; fi
if fails InvalidParameterValue describe-instance-status --filters Name=tag:Name,Values=x &&
	grep -q "The filter 'tag:Name' is invalid" "$WORK/err"; then
	ok "describe-instance-status with a tag filter: InvalidParameterValue, as EC2"
else bad "describe-instance-status tag filter: rc=$rc $(cat "$WORK/err")"; fi
if admin /_emu/config '{"status_ms": 3600000}' >/dev/null &&
	ec2 describe-instance-status --instance-ids "$F1" >"$WORK/st4.json" 2>"$WORK/err" &&
	jcheck "$WORK/st4.json" "[(s['InstanceStatus']['Status'], s['SystemStatus']['Details']) for s in d['InstanceStatuses']] == [('initializing', [{'Name': 'reachability', 'Status': 'initializing'}])]" &&
	admin /_emu/config '{"status_ms": 0}' >/dev/null; then
	ok "describe-instance-status: checks initializing while the emulator's status_ms has not passed"
else bad "describe-instance-status initializing: $(cat "$WORK/err")"; fi

# ---- SSM GetParameter (JSON protocol, signed for ssm) ------------------------
ssm() { runner --endpoint-url "$URL" --output json ssm "$@"; }
if ssm get-parameter --name "$SSM_AL2023" >"$WORK/ssm.json" 2>"$WORK/err" &&
	jcheck "$WORK/ssm.json" "d['Parameter']['Value'] == 'ami-0a1b2c3d4e5f60718' and d['Parameter']['Type'] == 'String' and d['Parameter']['DataType'] == 'aws:ec2:image' and d['Parameter']['ARN'] == 'arn:aws:ssm:us-east-1::parameter$SSM_AL2023'" &&
	runner --endpoint-url "$URL" ssm get-parameter --name /no/such/parameter >/dev/null 2>"$WORK/err"; [ $? -eq 254 ] &&
	grep -q "(ParameterNotFound)" "$WORK/err" &&
	admin /_emu/ssm_parameter '{"name": "/team/image", "value": "ami-0123abcd"}' >/dev/null &&
	ssm get-parameter --name /team/image >"$WORK/ssm2.json" 2>"$WORK/err" &&
	jcheck "$WORK/ssm2.json" "d['Parameter']['Value'] == 'ami-0123abcd' and d['Parameter']['ARN'] == 'arn:aws:ssm:us-east-1:123456789012:parameter/team/image'"; then
	ok "ssm get-parameter: a seeded AWS public parameter, ParameterNotFound, one added at run time"
else bad "ssm get-parameter: $(cat "$WORK/err")"; fi

# ---- Spot Fleet ----------------------------------------------------------------
# live IDS...: prints which of the instances are pending or running
live() {
	ec2 describe-instances --instance-ids "$@" >"$WORK/lv.json" 2>"$WORK/err" &&
		jget "$WORK/lv.json" "' '.join(sorted(i['InstanceId'] for r in d['Reservations'] for i in r['Instances'] if i['State']['Name'] in ('pending', 'running')))"
}
# sfi SFR: the Spot Fleet's active instance ids, sorted, one line
sfi() {
	ec2 describe-spot-fleet-instances --spot-fleet-request-id "$1" >"$WORK/sfi.json" 2>"$WORK/err" &&
		jget "$WORK/sfi.json" "' '.join(sorted(i['InstanceId'] for i in d['ActiveInstances']))"
}
SFCFG='{"IamFleetRole":"arn:aws:iam::123456789012:role/fleet","TargetCapacity":3,"Type":"maintain","AllocationStrategy":"diversified","LaunchSpecifications":[{"ImageId":"ami-12345678","InstanceType":"t3.medium","SubnetId":"subnet-0aa, subnet-0bb","TagSpecifications":[{"ResourceType":"instance","Tags":[{"Key":"job","Value":"render"}]}]}],"TagSpecifications":[{"ResourceType":"spot-fleet-request","Tags":[{"Key":"owner","Value":"hf"}]}]}'
if ec2 request-spot-fleet --spot-fleet-request-config "$SFCFG" >"$WORK/sf.json" 2>"$WORK/err" &&
	SFR=$(jget "$WORK/sf.json" "d['SpotFleetRequestId']") &&
	ec2 describe-spot-fleet-requests --spot-fleet-request-ids "$SFR" >"$WORK/sfd.json" 2>"$WORK/err" &&
	jcheck "$WORK/sfd.json" "(lambda c: c['SpotFleetRequestState'] == 'active' and c['ActivityStatus'] == 'fulfilled' and c['SpotFleetRequestConfig']['FulfilledCapacity'] == 3.0 and c['SpotFleetRequestConfig']['Type'] == 'maintain' and c['Tags'] == [{'Key': 'owner', 'Value': 'hf'}] and sorted(s['SubnetId'] for s in c['SpotFleetRequestConfig']['LaunchSpecifications']) == ['subnet-0aa', 'subnet-0bb'])(d['SpotFleetRequestConfigs'][0])" &&
	SF_IDS=$(sfi "$SFR") && [ "$(echo "$SF_IDS" | wc -w)" -eq 3 ] &&
	# shellcheck disable=SC2086
	ec2 describe-instances --instance-ids $SF_IDS >"$WORK/sfin.json" 2>"$WORK/err" &&
	jcheck "$WORK/sfin.json" "all(i['InstanceLifecycle'] == 'spot' and {'Key': 'aws:ec2spot:fleet-request-id', 'Value': '$SFR'} in i['Tags'] and {'Key': 'job', 'Value': 'render'} in i['Tags'] for r in d['Reservations'] for i in r['Instances']) and sorted(set(i['SubnetId'] for r in d['Reservations'] for i in r['Instances'])) == ['subnet-0aa', 'subnet-0bb']"; then
	ok "request-spot-fleet (maintain, 2 subnets, diversified): 3 spot instances tagged, describe-spot-fleet-requests / -instances"
else bad "request-spot-fleet: $(cat "$WORK/err")"; fi
GONE=$(echo "$SF_IDS" | cut -d' ' -f1)
if admin /_emu/interrupt "{\"instance_ids\": [\"$GONE\"]}" >"$WORK/int.json" 2>"$WORK/err" &&
	jcheck "$WORK/int.json" "d['interrupted'] == ['$GONE']" &&
	ec2 describe-instances --instance-ids "$GONE" >"$WORK/gone.json" 2>"$WORK/err" &&
	jcheck "$WORK/gone.json" "(lambda i: i['State']['Name'] in ('shutting-down', 'terminated') and i['StateReason']['Code'] == 'Server.SpotInstanceTermination')(d['Reservations'][0]['Instances'][0])" &&
	NOW=$(sfi "$SFR") && [ "$(echo "$NOW" | wc -w)" -eq 3 ] && ! echo "$NOW" | grep -q "$GONE"; then
	ok "a spot interruption (POST /_emu/interrupt): Server.SpotInstanceTermination, the maintain fleet replaces it"
else bad "spot fleet interruption: $(cat "$WORK/err")"; fi
# interruption notices: the spot request's status code a client polls for
# EC2's two-minute warning (describe-spot-instance-requests), then the
# interruption itself
if ec2 run-instances --image-id ami-12345678 --count 2 --instance-type t3.micro \
	--instance-market-options 'MarketType=spot' >"$WORK/spot.json" 2>"$WORK/err" &&
	SP_IDS=$(jget "$WORK/spot.json" "' '.join(i['InstanceId'] for i in d['Instances'])") &&
	SP1=$(echo "$SP_IDS" | cut -d' ' -f1) && SP2=$(echo "$SP_IDS" | cut -d' ' -f2) &&
	# shellcheck disable=SC2086
	ec2 describe-instances --instance-ids $SP_IDS >"$WORK/spi.json" 2>"$WORK/err" &&
	SIRS=$(jget "$WORK/spi.json" "' '.join(i['SpotInstanceRequestId'] for r in d['Reservations'] for i in r['Instances'] if i['InstanceLifecycle'] == 'spot')") &&
	[ "$(echo "$SIRS" | wc -w)" -eq 2 ] &&
	# shellcheck disable=SC2086
	ec2 describe-spot-instance-requests --spot-instance-request-ids $SIRS >"$WORK/sir.json" 2>"$WORK/err" &&
	jcheck "$WORK/sir.json" "sorted((r['State'], r['Status']['Code'], r['Type']) for r in d['SpotInstanceRequests']) == [('active', 'fulfilled', 'one-time')] * 2 and sorted(r['InstanceId'] for r in d['SpotInstanceRequests']) == sorted('$SP_IDS'.split())" &&
	admin /_emu/interrupt "{\"instance_ids\": [\"$SP1\"], \"notice\": true}" >"$WORK/not.json" 2>"$WORK/err" &&
	jcheck "$WORK/not.json" "d['interrupted'] == ['$SP1']" &&
	admin /_emu/interrupt "{\"instance_ids\": [\"$SP2\"], \"notice\": true, \"behavior\": \"stop\"}" >/dev/null 2>"$WORK/err" &&
	ec2 describe-spot-instance-requests --filters Name=status-code,Values=marked-for-termination >"$WORK/sir2.json" 2>"$WORK/err" &&
	jcheck "$WORK/sir2.json" "[(r['InstanceId'], r['State'], r['InstanceInterruptionBehavior']) for r in d['SpotInstanceRequests']] == [('$SP1', 'closed', 'terminate')]" &&
	ec2 describe-spot-instance-requests --filters Name=instance-id,Values="$SP2" >"$WORK/sir3.json" 2>"$WORK/err" &&
	jcheck "$WORK/sir3.json" "[(r['Status']['Code'], r['State']) for r in d['SpotInstanceRequests']] == [('marked-for-stop', 'active')]" &&
	# shellcheck disable=SC2086
	ec2 describe-instances --instance-ids $SP_IDS >"$WORK/spi2.json" 2>"$WORK/err" &&
	jcheck "$WORK/spi2.json" "all(i['State']['Name'] == 'running' for r in d['Reservations'] for i in r['Instances'])" &&
	admin /_emu/interrupt "{\"instance_ids\": [\"$SP1\"]}" >/dev/null 2>"$WORK/err" &&
	ec2 describe-spot-instance-requests --filters Name=instance-id,Values="$SP1" >"$WORK/sir4.json" 2>"$WORK/err" &&
	jcheck "$WORK/sir4.json" "[(r['Status']['Code'], r['State']) for r in d['SpotInstanceRequests']] == [('instance-terminated-no-capacity', 'closed')]" &&
	fails InvalidSpotInstanceRequestID.NotFound describe-spot-instance-requests --spot-instance-request-ids sir-00000000 &&
	fails InvalidSpotInstanceRequestID.Malformed describe-spot-instance-requests --spot-instance-request-ids sir-X &&
	fails InvalidParameterValue describe-spot-instance-requests --filters Name=tag:x,Values=y; then
	ok "interruption notices (POST /_emu/interrupt notice): describe-spot-instance-requests fulfilled → marked-for-termination (closed) / marked-for-stop (active) with the instances running, then instance-terminated-no-capacity; status-code and instance-id filters; NotFound, Malformed, unknown filter"
else bad "interruption notices: $(cat "$WORK/err")"; fi
if ec2 modify-spot-fleet-request --spot-fleet-request-id "$SFR" --target-capacity 1 >/dev/null 2>"$WORK/err" &&
	[ "$(sfi "$SFR" | wc -w)" -eq 1 ] &&
	ec2 modify-spot-fleet-request --spot-fleet-request-id "$SFR" --target-capacity 2 \
		--excess-capacity-termination-policy noTermination >/dev/null 2>"$WORK/err" &&
	[ "$(sfi "$SFR" | wc -w)" -eq 2 ] &&
	ec2 modify-spot-fleet-request --spot-fleet-request-id "$SFR" --target-capacity 1 >/dev/null 2>"$WORK/err" &&
	[ "$(sfi "$SFR" | wc -w)" -eq 2 ]; then
	ok "modify-spot-fleet-request: down terminates the excess (default), up launches, noTermination keeps them"
else bad "modify-spot-fleet-request: $(cat "$WORK/err")"; fi
KEPT=$(sfi "$SFR")
if ec2 cancel-spot-fleet-requests --spot-fleet-request-ids "$SFR" sfr-00000000-0000-0000-0000-000000000000 \
	--terminate-instances >"$WORK/sfc.json" 2>"$WORK/err" &&
	jcheck "$WORK/sfc.json" "d['SuccessfulFleetRequests'] == [{'CurrentSpotFleetRequestState': 'cancelled_terminating', 'PreviousSpotFleetRequestState': 'active', 'SpotFleetRequestId': '$SFR'}] and d['UnsuccessfulFleetRequests'][0]['Error']['Code'] == 'fleetRequestIdDoesNotExist'" &&
	# shellcheck disable=SC2086
	[ "$(live $KEPT)" = "" ] &&
	ec2 describe-spot-fleet-requests --spot-fleet-request-ids "$SFR" >"$WORK/sfd.json" 2>"$WORK/err" &&
	jcheck "$WORK/sfd.json" "d['SpotFleetRequestConfigs'][0]['SpotFleetRequestState'] == 'cancelled'"; then
	ok "cancel-spot-fleet-requests --terminate-instances: its instances terminated, then cancelled; an unknown id reported"
else bad "cancel-spot-fleet-requests: $(cat "$WORK/err")"; fi
SFREQ='{"IamFleetRole":"r","TargetCapacity":2,"Type":"request","OnDemandTargetCapacity":1,"ClientToken":"sf-tok","LaunchTemplateConfigs":[{"LaunchTemplateSpecification":{"LaunchTemplateId":"'"$LT_SEEDED"'","Version":"1"},"Overrides":[{"InstanceType":"t3.small"}]}]}'
if ec2 request-spot-fleet --spot-fleet-request-config "$SFREQ" >"$WORK/sr.json" 2>"$WORK/err" &&
	SR=$(jget "$WORK/sr.json" "d['SpotFleetRequestId']") &&
	ec2 request-spot-fleet --spot-fleet-request-config "$SFREQ" >"$WORK/sr2.json" 2>"$WORK/err" &&
	jcheck "$WORK/sr2.json" "d['SpotFleetRequestId'] == '$SR'" &&
	SR_IDS=$(sfi "$SR") &&
	# shellcheck disable=SC2086
	ec2 describe-instances --instance-ids $SR_IDS >"$WORK/srin.json" 2>"$WORK/err" &&
	jcheck "$WORK/srin.json" "sorted(i.get('InstanceLifecycle', 'on-demand') for r in d['Reservations'] for i in r['Instances']) == ['on-demand', 'spot'] and all(i['ImageId'] == 'ami-0abc1234' and i['InstanceType'] == 't3.small' for r in d['Reservations'] for i in r['Instances'])" &&
	admin /_emu/interrupt '{"count": 1000}' >"$WORK/int2.json" 2>"$WORK/err" &&
	[ "$(sfi "$SR" | wc -w)" -eq 1 ] &&
	fails InvalidSpotFleetRequestConfig request-spot-fleet --spot-fleet-request-config '{"IamFleetRole":"r","TargetCapacity":1}' &&
	fails DryRunOperation request-spot-fleet --dry-run --spot-fleet-request-config "$SFCFG"; then
	ok "request-spot-fleet type request from a launch template (1 on-demand, 1 spot): ClientToken replay, not replaced after an interruption; bad config, dry run"
else bad "spot fleet request type: rc=${rc:-} $(cat "$WORK/err")"; fi

# ---- EC2 Fleet maintain / request --------------------------------------------------
# fi FLEET: the fleet's active instance ids, sorted, one line
fi_ids() {
	ec2 describe-fleet-instances --fleet-id "$1" >"$WORK/fi.json" 2>"$WORK/err" &&
		jget "$WORK/fi.json" "' '.join(sorted(i['InstanceId'] for i in d['ActiveInstances']))"
}
if ec2 create-fleet --type maintain \
	--launch-template-configs '[{"LaunchTemplateSpecification":{"LaunchTemplateId":"'"$LT_SEEDED"'","Version":"1"},"Overrides":[{"InstanceType":"t3.micro","WeightedCapacity":2}]}]' \
	--target-capacity-specification TotalTargetCapacity=4,DefaultTargetCapacityType=spot >"$WORK/fm.json" 2>"$WORK/err" &&
	FM=$(jget "$WORK/fm.json" "d['FleetId']") &&
	ec2 describe-fleets --fleet-ids "$FM" >"$WORK/fmd.json" 2>"$WORK/err" &&
	jcheck "$WORK/fmd.json" "(lambda f: f['FleetState'] == 'active' and f['Type'] == 'maintain' and f['FulfilledCapacity'] == 4.0 and f['TargetCapacitySpecification'] == {'TotalTargetCapacity': 4, 'OnDemandTargetCapacity': 0, 'SpotTargetCapacity': 4, 'DefaultTargetCapacityType': 'spot'})(d['Fleets'][0])" &&
	FM_IDS=$(fi_ids "$FM") && [ "$(echo "$FM_IDS" | wc -w)" -eq 2 ] &&
	ec2 terminate-instances --instance-ids "$(echo "$FM_IDS" | cut -d' ' -f1)" >/dev/null 2>"$WORK/err" &&
	admin /_emu/interrupt "{\"instance_ids\": [\"$(echo "$FM_IDS" | cut -d' ' -f2)\"]}" >/dev/null 2>"$WORK/err" &&
	FM_NOW=$(fi_ids "$FM") && [ "$(echo "$FM_NOW" | wc -w)" -eq 2 ] && [ "$FM_NOW" != "$FM_IDS" ] &&
	ec2 modify-fleet --fleet-id "$FM" --target-capacity-specification TotalTargetCapacity=2 >/dev/null 2>"$WORK/err" &&
	[ "$(fi_ids "$FM" | wc -w)" -eq 1 ]; then
	ok "create-fleet maintain (weights, spot): describe-fleets, describe-fleet-instances, a terminated and an interrupted instance replaced, modify-fleet down"
else bad "create-fleet maintain: $(cat "$WORK/err")"; fi
FM_LAST=$(fi_ids "$FM")
if ec2 delete-fleets --fleet-ids "$FM" fleet-00000000-0000-0000-0000-000000000000 --terminate-instances \
	>"$WORK/fdel.json" 2>"$WORK/err" &&
	jcheck "$WORK/fdel.json" "d['SuccessfulFleetDeletions'] == [{'CurrentFleetState': 'deleted_terminating', 'PreviousFleetState': 'active', 'FleetId': '$FM'}] and d['UnsuccessfulFleetDeletions'][0]['Error']['Code'] == 'fleetIdDoesNotExist'" &&
	[ "$(live "$FM_LAST")" = "" ] &&
	ec2 describe-fleets --fleet-ids "$FM" >"$WORK/fmd.json" 2>"$WORK/err" &&
	jcheck "$WORK/fmd.json" "d['Fleets'][0]['FleetState'] == 'deleted'" &&
	ec2 delete-fleets --fleet-ids "$FM" --terminate-instances >"$WORK/fdel2.json" 2>"$WORK/err" &&
	jcheck "$WORK/fdel2.json" "d['UnsuccessfulFleetDeletions'][0]['Error']['Code'] == 'fleetNotInDeletableState'"; then
	ok "delete-fleets --terminate-instances: deleted_terminating, its instances gone, then deleted; twice: fleetNotInDeletableState; unknown reported"
else bad "delete-fleets: $(cat "$WORK/err")"; fi
if ec2 create-fleet --type request \
	--launch-template-configs '[{"LaunchTemplateSpecification":{"LaunchTemplateId":"'"$LT_SEEDED"'","Version":"1"},"Overrides":[{"InstanceType":"t3.micro"}]}]' \
	--target-capacity-specification TotalTargetCapacity=2,DefaultTargetCapacityType=spot >"$WORK/fr.json" 2>"$WORK/err" &&
	FR=$(jget "$WORK/fr.json" "d['FleetId']") && [ "$(fi_ids "$FR" | wc -w)" -eq 2 ] &&
	admin /_emu/interrupt '{"count": 1000}' >/dev/null 2>"$WORK/err" &&
	[ "$(fi_ids "$FR" | wc -w)" -eq 0 ] &&
	fails UnsupportedOperation modify-fleet --fleet-id "$FR" --target-capacity-specification TotalTargetCapacity=3 &&
	fails InvalidFleetId.NotFound describe-fleet-instances --fleet-id fleet-00000000-0000-0000-0000-000000000000; then
	ok "create-fleet request: not replaced after interruptions, not modifiable; unknown fleet InvalidFleetId.NotFound"
else bad "create-fleet request: rc=${rc:-} $(cat "$WORK/err")"; fi

# ---- Auto Scaling (Query API, signed for autoscaling) -------------------------------
asg() { runner --endpoint-url "$URL" --output json autoscaling "$@"; }
# asg_fails CODE ARGS...: `aws autoscaling ARGS...` exits 254 naming CODE
asg_fails() {
	want=$1
	shift
	asg "$@" >/dev/null 2>"$WORK/err"
	rc=$?
	[ $rc -eq 254 ] && grep -q "($want)" "$WORK/err"
}
# asg_state NAME: "desired id id ..." (InService and Pending instances, sorted)
asg_state() {
	asg describe-auto-scaling-groups --auto-scaling-group-names "$1" >"$WORK/ag.json" 2>"$WORK/err" &&
		jget "$WORK/ag.json" "' '.join([str(d['AutoScalingGroups'][0]['DesiredCapacity'])] + sorted(i['InstanceId'] for i in d['AutoScalingGroups'][0]['Instances'] if i['LifecycleState'] in ('InService', 'Pending')))"
}
if asg create-auto-scaling-group --auto-scaling-group-name hf-asg --launch-template "LaunchTemplateId=$LT_SEEDED,Version=\$Latest" \
	--min-size 1 --max-size 4 --desired-capacity 2 --vpc-zone-identifier subnet-0aa,subnet-0bb \
	--tags Key=team,Value=red,PropagateAtLaunch=true Key=cost,Value=x,PropagateAtLaunch=false 2>"$WORK/err" &&
	asg describe-auto-scaling-groups --auto-scaling-group-names hf-asg no-such-group >"$WORK/ag.json" 2>"$WORK/err" &&
	jcheck "$WORK/ag.json" "len(d['AutoScalingGroups']) == 1 and (lambda g: g['DesiredCapacity'] == 2 and g['MinSize'] == 1 and g['MaxSize'] == 4 and g['LaunchTemplate']['LaunchTemplateId'] == '$LT_SEEDED' and g['VPCZoneIdentifier'] == 'subnet-0aa,subnet-0bb' and len(g['Instances']) == 2 and all(i['LifecycleState'] == 'InService' and i['HealthStatus'] == 'Healthy' for i in g['Instances']) and len(set(i['AvailabilityZone'] for i in g['Instances'])) == 2 and sorted((t['Key'], t['PropagateAtLaunch']) for t in g['Tags']) == [('cost', False), ('team', True)])(d['AutoScalingGroups'][0])" &&
	AG=$(jget "$WORK/ag.json" "' '.join(sorted(i['InstanceId'] for i in d['AutoScalingGroups'][0]['Instances']))") &&
	# shellcheck disable=SC2086
	ec2 describe-instances --instance-ids $AG >"$WORK/agin.json" 2>"$WORK/err" &&
	jcheck "$WORK/agin.json" "all({'Key': 'aws:autoscaling:groupName', 'Value': 'hf-asg'} in i['Tags'] and {'Key': 'team', 'Value': 'red'} in i['Tags'] and 'cost' not in [t['Key'] for t in i['Tags']] and i['ImageId'] == 'ami-0abc1234' for r in d['Reservations'] for i in r['Instances'])" &&
	# shellcheck disable=SC2086
	asg describe-auto-scaling-instances --instance-ids $AG i-0badc0ffee0000000 >"$WORK/agi.json" 2>"$WORK/err" &&
	jcheck "$WORK/agi.json" "sorted((i['AutoScalingGroupName'], i['LifecycleState'], i['HealthStatus']) for i in d['AutoScalingInstances']) == [('hf-asg', 'InService', 'HEALTHY')] * 2"; then
	ok "create-auto-scaling-group from a launch template over 2 subnets: 2 instances in 2 AZs, propagated tags only; describe groups / instances"
else bad "create-auto-scaling-group: $(cat "$WORK/err")"; fi
A1=$(echo "$AG" | cut -d' ' -f1)
A2=$(echo "$AG" | cut -d' ' -f2)
if asg terminate-instance-in-auto-scaling-group --instance-id "$A1" --should-decrement-desired-capacity \
	>"$WORK/act.json" 2>"$WORK/err" &&
	jcheck "$WORK/act.json" "d['Activity']['AutoScalingGroupName'] == 'hf-asg' and d['Activity']['StatusCode'] == 'InProgress' and 'shrinking the capacity from 2 to 1' in d['Activity']['Cause']" &&
	[ "$(asg_state hf-asg)" = "1 $A2" ] &&
	asg terminate-instance-in-auto-scaling-group --instance-id "$A2" --no-should-decrement-desired-capacity >/dev/null 2>"$WORK/err" &&
	ST=$(asg_state hf-asg) && [ "$(echo "$ST" | wc -w)" -eq 2 ] && ! echo "$ST" | grep -q "$A2" &&
	asg_fails ValidationError terminate-instance-in-auto-scaling-group --instance-id "$(echo "$ST" | cut -d' ' -f2)" --should-decrement-desired-capacity &&
	grep -q "minSize" "$WORK/err"; then
	ok "terminate-instance-in-auto-scaling-group: with ShouldDecrementDesiredCapacity the group shrinks, without it replaces; not below MinSize"
else bad "terminate-instance-in-auto-scaling-group: rc=${rc:-} $(cat "$WORK/err")"; fi
if asg set-desired-capacity --auto-scaling-group-name hf-asg --desired-capacity 3 2>"$WORK/err" &&
	[ "$(asg_state hf-asg | wc -w)" -eq 4 ] &&
	asg_fails ValidationError set-desired-capacity --auto-scaling-group-name hf-asg --desired-capacity 5 &&
	grep -q "above max value 4" "$WORK/err" &&
	asg_fails ResourceInUse delete-auto-scaling-group --auto-scaling-group-name hf-asg &&
	asg_fails AlreadyExists create-auto-scaling-group --auto-scaling-group-name hf-asg --launch-template "LaunchTemplateId=$LT_SEEDED" --min-size 0 --max-size 1 &&
	asg_fails ValidationError create-auto-scaling-group --auto-scaling-group-name other --launch-template LaunchTemplateId=lt-0badc0ffee0000000 --min-size 0 --max-size 1 &&
	grep -q "does not exist" "$WORK/err"; then
	ok "set-desired-capacity 3 (and above MaxSize refused); delete with instances: ResourceInUse; AlreadyExists; an unknown launch template"
else bad "set-desired-capacity: rc=${rc:-} $(cat "$WORK/err")"; fi
AG_LAST=$(asg_state hf-asg | cut -d' ' -f2-)
if asg delete-auto-scaling-group --auto-scaling-group-name hf-asg --force-delete 2>"$WORK/err" &&
	# shellcheck disable=SC2086
	[ "$(live $AG_LAST)" = "" ] &&
	asg describe-auto-scaling-groups --auto-scaling-group-names hf-asg >"$WORK/ag.json" 2>"$WORK/err" &&
	jcheck "$WORK/ag.json" "d['AutoScalingGroups'] == []" &&
	asg create-auto-scaling-group --auto-scaling-group-name empty-asg --launch-template "LaunchTemplateId=$LT_SEEDED" \
		--min-size 0 --max-size 2 --desired-capacity 1 2>"$WORK/err" &&
	asg set-desired-capacity --auto-scaling-group-name empty-asg --desired-capacity 0 2>"$WORK/err" &&
	asg delete-auto-scaling-group --auto-scaling-group-name empty-asg 2>"$WORK/err"; then
	ok "delete-auto-scaling-group --force-delete terminates its instances; an emptied group deletes without it"
else bad "delete-auto-scaling-group: $(cat "$WORK/err")"; fi
if asg create-auto-scaling-group --auto-scaling-group-name mixed-asg --min-size 0 --max-size 10 --desired-capacity 5 \
	--mixed-instances-policy '{"LaunchTemplate":{"LaunchTemplateSpecification":{"LaunchTemplateId":"'"$LT_SEEDED"'","Version":"$Default"},"Overrides":[{"InstanceType":"t3.micro"},{"InstanceType":"t3.small"}]},"InstancesDistribution":{"OnDemandBaseCapacity":1,"OnDemandPercentageAboveBaseCapacity":50}}' \
	2>"$WORK/err" &&
	MX=$(asg_state mixed-asg | cut -d' ' -f2-) &&
	# shellcheck disable=SC2086
	ec2 describe-instances --instance-ids $MX >"$WORK/mx.json" 2>"$WORK/err" &&
	jcheck "$WORK/mx.json" "sorted(i.get('InstanceLifecycle', 'on-demand') for r in d['Reservations'] for i in r['Instances']) == ['on-demand'] * 3 + ['spot'] * 2 and set(i['InstanceType'] for r in d['Reservations'] for i in r['Instances']) == {'t3.micro', 't3.small'}" &&
	MXSPOT=$(jget "$WORK/mx.json" "json.dumps([i['InstanceId'] for r in d['Reservations'] for i in r['Instances'] if i.get('InstanceLifecycle') == 'spot'])") &&
	admin /_emu/interrupt "{\"instance_ids\": $MXSPOT}" >/dev/null 2>"$WORK/err" &&
	MX2=$(asg_state mixed-asg | cut -d' ' -f2-) && [ "$(echo "$MX2" | wc -w)" -eq 5 ] &&
	# shellcheck disable=SC2086
	ec2 describe-instances --instance-ids $MX2 >"$WORK/mx2.json" 2>"$WORK/err" &&
	jcheck "$WORK/mx2.json" "sorted(i.get('InstanceLifecycle', 'on-demand') for r in d['Reservations'] for i in r['Instances']) == ['on-demand'] * 3 + ['spot'] * 2 and not set(json.loads('$MXSPOT')) & set(i['InstanceId'] for r in d['Reservations'] for i in r['Instances'])"; then
	ok "a MixedInstancesPolicy group: base 1 + 50 % on-demand (3 of 5), 2 spot over both types; interrupted spot replaced"
else bad "mixed instances group: $(cat "$WORK/err")"; fi

# wrong credentials
AWS_SECRET_ACCESS_KEY=wrong ec2_exec describe-regions >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q SignatureDoesNotMatch "$WORK/err"; then
	ok "wrong secret: SignatureDoesNotMatch"
else bad "wrong secret: rc=$rc $(cat "$WORK/err")"; fi
AWS_ACCESS_KEY_ID=AKIDUNKNOWN ec2_exec describe-regions >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q AuthFailure "$WORK/err"; then
	ok "unknown access key: AuthFailure"
else bad "unknown key: rc=$rc $(cat "$WORK/err")"; fi
AWS_SESSION_TOKEN=FQoGZXIvYXdzEXAMPLETOKEN ec2_exec describe-regions >/dev/null 2>"$WORK/err"
if [ $? -eq 0 ]; then ok "session token (signed x-amz-security-token) accepted"
else bad "session token: $(cat "$WORK/err")"; fi

echo "$FAILS failure(s)"
[ $FAILS -eq 0 ]
