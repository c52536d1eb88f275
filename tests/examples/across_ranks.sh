#!/bin/sh
# The main job under mpirun, as a user runs it: the table (each model's
# validation, minibatches, test accuracy, the choice) on 2 ranks is the one a
# single process prints; a checkpoint written on 2 ranks resumes in one
# process, and one written by one process resumes on 3, to the uninterrupted
# run's table; a bad launch is refused once, naming the limit.
# Usage: across_ranks.sh MODEL_SELECTION MPIEXEC
set -u
job=$1
mpiexec=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
failures=0
fail() {
  echo "FAILED: $*"
  failures=$((failures + 1))
}
table() { sed -n '/^rank model/,/^compute:/p' "$1"; }
same_table() { # what, expected output, output
  table "$2" >want.table
  table "$3" >got.table
  if [ ! -s want.table ]; then
    fail "$1: no table in $2"
    cat "$2"
  elif ! diff want.table got.table; then
    fail "$1: the tables differ"
    cat "$3"
  else
    echo "ok: $1"
  fi
}
on() { # ranks, then the job's flags
  n=$1
  shift
  "$mpiexec" -np "$n" --oversubscribe "$job" "$@"
}
small="--grid tiny --train-subset 1280 --test-subset 320 --epochs 3 --batch 32 --image-side 14 --budget 800KiB --devices 2"

# Successive halving: rank 0's controller decides from both ranks' metrics as
# one process does; rounds of 4 minibatches.
"$job" $small --search sha --eta 2 >sha-one.txt 2>&1 || fail "sha in one process: exit $?"
on 2 $small --search sha --eta 2 --round 4 >sha-two.txt 2>&1 || fail "sha on 2 ranks: exit $?"
same_table "successive halving on 2 ranks" sha-one.txt sha-two.txt
grep -q "on each of 2 MPI ranks" sha-two.txt || fail "the 2-rank run does not say it ran on 2 ranks"
grep -q "^  rank 1 on " sha-two.txt || fail "no line for rank 1"

# The schedule of both ranks in one trace and one report: 2 ranks of 2
# devices are devices 0-3.
on 2 $small --search sha --eta 2 --round 4 --trace trace.json --report report.html >traced.txt 2>&1 ||
  fail "traced on 2 ranks: exit $?"
for d in 0 1 2 3; do
  grep -q "data-device=\"$d\"" report.html || fail "the report has no row for device $d"
done
# Rank 0's device 0 and a device of rank 1 (a model may use one device of two).
grep -q '"process_name","pid":0,"args":{"name":"device 0"}' trace.json || fail "the trace has no device 0"
grep -q '"process_name","pid":[23],"args":{"name":"device [23]"}' trace.json || fail "the trace has no device of rank 1"
same_table "successive halving on 2 ranks, traced" sha-one.txt traced.txt

# A grid's checkpoint, from 2 ranks to one process and from one process to 3 ranks.
"$job" $small --search grid >grid-one.txt 2>&1 || fail "grid in one process: exit $?"
on 2 $small --search grid --round 5 --checkpoint-dir two --stop-after 60 >stopped-two.txt 2>&1 ||
  fail "grid on 2 ranks, stopped: exit $?"
grep -q "stopped after a checkpoint, as asked" stopped-two.txt || fail "the 2-rank run did not stop as asked"
"$job" $small --search grid --checkpoint-dir two --resume >resumed-one.txt 2>&1 || fail "resumed in one process: exit $?"
# It started where the checkpoint was: its first progress line counts the
# minibatches the checkpoint holds.
held=$(sed -n 's/^resuming from two\/sweep.checkpoint after \([0-9]*\) minibatches.*/\1/p' resumed-one.txt)
grep -m1 "^models finished" resumed-one.txt | grep -q "minibatches ${held:-none} " ||
  fail "the one process did not start from the checkpoint's ${held:-(no figure)} minibatches"
same_table "a checkpoint written on 2 ranks, resumed in one process" grid-one.txt resumed-one.txt
"$job" $small --search grid --checkpoint-dir one --stop-after 60 >stopped-one.txt 2>&1 || fail "grid stopped: exit $?"
on 3 $small --search grid --round 5 --checkpoint-dir one --resume >resumed-three.txt 2>&1 ||
  fail "resumed on 3 ranks: exit $?"
on 3 $small --search grid --round 5 >grid-three.txt 2>&1 || fail "grid on 3 ranks: exit $?"
# Fewer bytes written back from the devices than a whole run's: it trained less.
back() { sed -n 's/^sweep .* to the devices and \([0-9]*\) bytes.* back$/\1/p' "$1"; }
[ "$(back resumed-three.txt)" -lt "$(back grid-three.txt)" ] 2>/dev/null ||
  fail "the 3 ranks did not resume: $(back resumed-three.txt) bytes back, a whole run $(back grid-three.txt)"
same_table "a checkpoint written in one process, resumed on 3 ranks" grid-one.txt resumed-three.txt

# ASHA on 2 ranks of 1 device each: models started later fall out of step
# with those promoted, so rounds end between a model's checkpoints; the file
# still holds each model at its latest checkpoint, which one process resumes.
asha="--grid mlp --train-subset 1280 --test-subset 320 --epochs 3 --batch 32 --image-side 14 --budget 12MiB --search asha --eta 2"
on 2 $asha --devices 1 --round 4 --checkpoint-dir asha --checkpoint-every 1 --stop-after 300 >asha-two.txt 2>&1 ||
  fail "asha on 2 ranks, stopped: exit $?"
"$job" $asha --devices 2 --checkpoint-dir asha --resume >asha-one.txt 2>&1 || fail "asha resumed in one process: exit $?"
if [ -n "$(table asha-one.txt)" ] && grep -q "resuming from asha/sweep.checkpoint after [1-9]" asha-one.txt; then
  echo "ok: an ASHA checkpoint written on 2 ranks, resumed in one process"
else
  fail "an ASHA checkpoint written on 2 ranks did not resume in one process"
  cat asha-two.txt asha-one.txt
fi

# Bad launches: refused on every rank, said once, exit status not 0.
said_once() { # what, the message's pattern after "model_selection: " (in refused.txt)
  count=$(grep -c "^model_selection: $2" refused.txt)
  if [ "$count" != 1 ]; then
    fail "$1: '$2' said $count times"
    cat refused.txt
  else
    echo "ok: $1"
  fi
}
refused() { # what, expected message, ranks, flags
  what=$1
  expected=$2
  shift 2
  on "$@" >refused.txt 2>&1 && fail "$what: exit status 0"
  said_once "$what" ".*$expected"
}
refused "more ranks than models" "4 ranks for 3 models" 4 $small
refused "a profile across ranks" "--profile: a profile describes one machine's devices; across 2 MPI ranks" 2 \
  $small --profile p.json
refused "a bad flag" "--devices: Value 0 not in range" 2 $small --devices 0
[ ! -e p.json ] || fail "the refused profile left p.json"
# Rank 1 alone cannot read its data: said once, naming the rank; no rank waits.
"$mpiexec" -np 2 --oversubscribe sh -c \
  'if [ "${OMPI_COMM_WORLD_RANK:-0}" = 1 ]; then exec "$0" --data-dir /nowhere "$@"; else exec "$0" "$@"; fi' \
  "$job" $small >refused.txt 2>&1 && fail "data missing on rank 1: exit status 0"
said_once "data missing on rank 1" "rank 1 (on [^)]*): /nowhere/train-images-idx3-ubyte.gz: missing"

[ "$failures" = 0 ] && echo "all checks passed"
exit "$failures"
