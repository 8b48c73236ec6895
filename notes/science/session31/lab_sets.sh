# Session 31's CPU lab settings, sourced by cpu_lab.sh and cpu_collect.sh: `lab_sets S K` fills
# the array `sets` with the `--set` options of seed S at K iterations (HS: the judge-format
# corpus's hard-negative share, default 0; every model node on the CPU; a 900-item bench), and
# BIN and C (the binary and the cache, one cache per HS) get their defaults.
HS=${HS:-0}; BIN=${BIN:-/tmp/jf30cuda}; C=${C:-/tmp/hs${HS#0.}/c}
lab_sets() { # S K
    sets=(--set world.judge_hard_share=$HS --set bench.count=300 --set pipeline.seed=$1
        --set iterate.self_train.times=$2)
    for n in pretrain probe describe eval_base eval_base_blind sample_open sample_closed \
        sample_reasoning judge train evaluate evaluate_blind; do
        sets+=(--set $n.device=cpu)
    done
}
