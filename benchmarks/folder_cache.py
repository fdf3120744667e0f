"""The image-folder loader's first (decoding) and cached loads, on a labelled folder such as cifar10-jpeg.

Each split is loaded twice into an empty cache folder: the first load decodes
every image and writes the cache, the second reads it (the folder is still listed
and every file's size and mtime hashed, to notice changes). Prints one JSON object:

    python benchmarks/folder_cache.py ../shared/data/cifar10-jpeg
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

from pixelzoo import data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="the image folder (ImageFolder layout)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3, help="cached loads timed (median kept)")
    args = p.parse_args()
    out = {"benchmark": "folder_cache", "root": args.root, "size": args.size, "splits": {}}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["PIXELZOO_DATA"] = cache
        for split in ("test", "train", "valid"):
            t0 = time.perf_counter()
            ds = data.load("folder", split, args.root, size=args.size)
            first = time.perf_counter() - t0
            cached = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                data.load("folder", split, args.root, size=args.size)
                cached.append(time.perf_counter() - t0)
            cached.sort()
            out["splits"][split] = {
                "images": len(ds),
                "first_seconds": round(first, 2),
                "cached_seconds_median": round(cached[len(cached) // 2], 3),
                "cached_seconds_range": [round(cached[0], 3), round(cached[-1], 3)],
                "speedup": round(first / cached[len(cached) // 2], 1),
            }
    out["note"] = "valid is a fixed 10% of train/: its first load reads train's cache"
    out["machine"] = platform.processor() or platform.machine()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
