#!/bin/sh
# awscli_test.sh - proves the EC2 emulator's fidelity with the real AWS CLI
# (Debian's awscli, /usr/bin/aws): every command runs against the emulator
# on a loopback port with dummy credentials, and its output is checked.
# Usage: awscli_test.sh EC2_EMULATOR DATA_DIR. Exit 77 (skipped) without
# /usr/bin/aws; never contacts AWS.
set -u
EMU=$1
DATA=$2
AWS=${AWS_CLI:-/usr/bin/aws}
[ -x "$AWS" ] || { echo "skip: $AWS not installed (apt-get install awscli)"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 missing"; exit 77; }

WORK=$(mktemp -d /tmp/pv-awscli-XXXXXX)
# The emulator, like EC2, refuses a launch template it does not know: seed
# the one the create-fleet case names.
LT_SEEDED=lt-0123456789abcdef0
"$EMU" --port 0 --port-file "$WORK/port" --boot-ms 0 \
	--launch-template "$LT_SEEDED:provisio-cli-seeded:ami-0abc1234:t3.micro" >"$WORK/emu.log" 2>&1 &
EMU_PID=$!
cleanup() { kill "$EMU_PID" 2>/dev/null; wait "$EMU_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
i=0
# the emulator writes its port once it listens (a 120 s safety bound)
while [ ! -s "$WORK/port" ] && [ $i -lt 12000 ]; do sleep 0.01; i=$((i + 1)); done
PORT=$(cat "$WORK/port")
URL="http://127.0.0.1:$PORT"

# Dummy credentials only; no profile, no IMDS, no proxy, no pager.
export HOME="$WORK" AWS_ACCESS_KEY_ID=AKIDEXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_SESSION_TOKEN AWS_PROFILE http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
export NO_PROXY=127.0.0.1

FAILS=0
ok() { echo "ok   - $1"; }
bad() { echo "FAIL - $1"; FAILS=$((FAILS + 1)); }
ec2() { "$AWS" --endpoint-url "$URL" --output json ec2 "$@"; }
# jcheck FILE PYTHON-EXPR: the expression, over the JSON in FILE as `d`, is true
jcheck() { python3 -c "import json,sys; d=json.load(open('$1')); sys.exit(0 if ($2) else 1)"; }

# describe-regions
if ec2 describe-regions >"$WORK/regions.json" 2>"$WORK/err" &&
	jcheck "$WORK/regions.json" "'us-east-1' in [r['RegionName'] for r in d['Regions']]"; then
	ok "describe-regions lists us-east-1"
else bad "describe-regions: $(cat "$WORK/err")"; fi

# run-instances with tags, user data and a client token
if ec2 run-instances --image-id ami-12345678 --count 2 --instance-type t3.micro --client-token abc \
	--tag-specifications 'ResourceType=instance,Tags=[{Key=Name,Value=web 1},{Key=env,Value=a&b=c}]' \
	--user-data 'hello world' >"$WORK/run.json" 2>"$WORK/err" &&
	jcheck "$WORK/run.json" "len(d['Instances'])==2 and d['Instances'][0]['State']['Name'] in ('pending','running') and {'Key':'env','Value':'a&b=c'} in d['Instances'][0]['Tags'] and d['Instances'][0]['InstanceType']=='t3.micro' and d['ReservationId'].startswith('r-')"; then
	ok "run-instances launches 2 tagged instances"
else bad "run-instances: $(cat "$WORK/err")"; fi
ID1=$(python3 -c "import json; print(json.load(open('$WORK/run.json'))['Instances'][0]['InstanceId'])")
ID2=$(python3 -c "import json; print(json.load(open('$WORK/run.json'))['Instances'][1]['InstanceId'])")

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
LT=$(python3 -c "import json; print(json.load(open('$WORK/lt.json'))['LaunchTemplate']['LaunchTemplateId'])" 2>/dev/null)
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
	LTI=$(python3 -c "import json; print(json.load(open('$WORK/ltfleet.json'))['Instances'][0]['InstanceIds'][0])") &&
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

# wrong credentials
AWS_SECRET_ACCESS_KEY=wrong ec2 describe-regions >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q SignatureDoesNotMatch "$WORK/err"; then
	ok "wrong secret: SignatureDoesNotMatch"
else bad "wrong secret: rc=$rc $(cat "$WORK/err")"; fi
AWS_ACCESS_KEY_ID=AKIDUNKNOWN ec2 describe-regions >/dev/null 2>"$WORK/err"
rc=$?
if [ $rc -eq 254 ] && grep -q AuthFailure "$WORK/err"; then
	ok "unknown access key: AuthFailure"
else bad "unknown key: rc=$rc $(cat "$WORK/err")"; fi
AWS_SESSION_TOKEN=FQoGZXIvYXdzEXAMPLETOKEN ec2 describe-regions >/dev/null 2>"$WORK/err"
if [ $? -eq 0 ]; then ok "session token (signed x-amz-security-token) accepted"
else bad "session token: $(cat "$WORK/err")"; fi

echo "$FAILS failure(s)"
[ $FAILS -eq 0 ]
