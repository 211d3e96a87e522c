"""Summary of bench_rounds (bench/lib.sh): a Markdown table of medians and
p90s over every round, then ratios and differences of medians, each with
its per-round values.

  python3 bench/rounds.py DIR ROUNDS NAME... [--ratio A/B[@TARGET]]... [--diff "A|B@LABEL"]...
"""
import json
import statistics
import sys

work, rounds = sys.argv[1], int(sys.argv[2])
names, ratios, diffs = [], [], []
args = iter(sys.argv[3:])
for arg in args:
    if arg == "--ratio":
        ratios.append(next(args))
    elif arg == "--diff":
        diffs.append(next(args))
    else:
        names.append(arg)

times, round_medians = {}, []
for r in range(rounds):
    results = {x["command"]: x["times"] for x in json.load(open(f"{work}/launch-{r}.json"))["results"]}
    round_medians.append({name: statistics.median(t) * 1000 for name, t in results.items()})
    for name, t in results.items():
        times.setdefault(name, []).extend(t)
med = {name: statistics.median(t) * 1000 for name, t in times.items()}
p90 = {name: sorted(t)[int(len(t) * 0.9) - 1] * 1000 for name, t in times.items()}
print("| command | median (ms) | p90 (ms) | runs |")
print("| --- | ---: | ---: | ---: |")
for name in names:
    print(f"| {name} | {med[name]:.2f} | {p90[name]:.2f} | {len(times[name])} |")
print()
for spec in ratios:
    pair, _, target = spec.partition("@")
    a, b = pair.split("/")
    by_round = ", ".join(f"{m[a] / m[b]:.3f}" for m in round_medians)
    goal = f"target ≤ {target}; " if target else ""
    print(f"- {a} / {b} = {med[a] / med[b]:.3f} ({goal}by round: {by_round})")
for spec in diffs:
    pair, _, label = spec.partition("@")
    a, b = pair.split("|")
    by_round = ", ".join(f"{m[a] - m[b]:+.2f}" for m in round_medians)
    print(f"- {label or a + ' - ' + b} = {med[a] - med[b]:+.2f} ms (by round: {by_round})")
