#!/usr/bin/env python3
"""Summarise a py-spy raw profile (``copy_1m.py --profile`` writes them).

    .venv/bin/python bench/profile_top.py bench/results/profile_migrate_200000.txt [N]

Prints samples per thread, then the top N functions by self samples and by inclusive
samples (line numbers dropped, site-packages paths shortened). py-spy skips idle threads
by default, so the samples are where the process spent CPU.
"""

from __future__ import annotations

import re
import sys
from collections import Counter


def main() -> None:
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, count_text = line.rsplit(" ", 1)
            count = int(count_text)
            total += count
            thread, *frames = stack.split(";")
            threads[re.sub(r" \(\d+\)", "", thread)] += count
            names = [re.sub(r":\d+\)$", ")", fr.split("site-packages/")[-1]) for fr in frames]
            if names:
                own[names[-1]] += count
            for name in set(names):
                inclusive[name] += count
    print(f"{total} samples")
    for title, counter in (("threads", threads), ("self", own), ("inclusive", inclusive)):
        print(f"-- {title}")
        for name, count in counter.most_common(top):
            print(f"{count:7d} {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
