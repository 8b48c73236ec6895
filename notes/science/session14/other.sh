#!/usr/bin/env bash
cd /work/main
B=/tmp/lab14/judgeflow_other
M3=$(cat /tmp/lab13/out/B6s3/model.txt)
export RAYON_NUM_THREADS=1
declare -A T=([1]=/tmp/lab13/cache_st3/entries/27595eed0ed310d28288ce7c5e2eaba127de0285e39d3155fb3837b1e20a06d8/model [2]=/tmp/lab13/cache_st3/entries/445b9c66ca2a38ba31ef3fa416314346526b80ebea4d938d5b7b59d8da131ce6/model [3]=/tmp/lab13/cache_st3/entries/c9ce479c3833dfb490304c97af8a854586d8260e4ef7e54c722e434c26cf7b8f/model)
for s in 1 2 3; do
  nice -n 5 $B run notes/science/session14/blind_other.toml --cache /tmp/lab14/cache_other --jobs 1 --set model.path=$M3 --set pipeline.seed=$s > /tmp/lab14/other_base_s$s.run.txt 2>&1; echo "base s$s $?"
  nice -n 5 $B run notes/science/session14/blind_other.toml --cache /tmp/lab14/cache_other --jobs 1 --set model.path=${T[$s]} --set pipeline.seed=$s > /tmp/lab14/other_st3_s$s.run.txt 2>&1; echo "st3 s$s $?"
done
echo done
