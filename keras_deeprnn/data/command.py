"""`deeprnn data list|fetch`: the registered data sets, and where their files are.

`list` shows every data set of :mod:`keras_deeprnn.data.registry` and
whether its files are here (checked against their SHA-256); `fetch NAME`
finds or downloads them and prints their paths. Exit codes: 0 done, 2 a
data set that cannot be had (unknown, changed, offline).
"""

import argparse
import sys
from pathlib import Path

from keras_deeprnn.data import registry


def parser():
    p = argparse.ArgumentParser(
        prog="deeprnn data",
        description="The benchmark data sets by name: each file is looked for in --data-dir, "
        f"then ${registry.DATA_DIR_ENV} (folders separated by ':'), then Keras's cache "
        "(~/.keras/datasets/deeprnn), and downloaded from its canonical URL if nowhere; "
        "its SHA-256 is checked wherever it came from.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="the data sets and whether their files are here")
    fetch = sub.add_parser("fetch", help="find or download data sets; prints their files' paths")
    fetch.add_argument("names", nargs="*", metavar="NAME", help="data sets (see `list`)")
    fetch.add_argument("--all", action="store_true", help="every data set that can be fetched")
    for q in (listing, fetch):
        q.add_argument(
            "--data-dir",
            type=Path,
            action="append",
            default=None,
            help="a folder (or local mirror) searched first; may be repeated",
        )
    return p


def _where(dataset, data_dir):
    """A short status of the data set's files here, without downloading."""
    try:
        paths = [registry.locate(dataset, f, data_dir, download=False) for f in dataset.files]
    except registry.ChecksumError as error:
        return f"CHANGED: {str(error).split(':')[0]}"
    except registry.DataUnavailable:
        return "not here"
    except registry.DataError:
        return "no SHA-256 recorded"
    folders = sorted({str(p.parent) for p in paths})
    return "here: " + ", ".join(folders)


def list_datasets(args):
    rows = [(d.name, str(len(d.files)), _where(d, args.data_dir), d.description)
            for d in registry.DATASETS.values()]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for name, files, where, description in rows:
        print(f"{name:<{widths[0]}}  {files:>{widths[1]}} file(s)  {description}")
        print(f"{'':<{widths[0]}}  {where}")
    searched = [str(d) for d in registry.data_dirs(args.data_dir)] + [str(registry.cache_dir())]
    print(f"\nsearched: {', '.join(searched)}")
    print("`deeprnn data fetch NAME` downloads what is not here.")
    return 0


def fetch(args):
    if args.all:
        names = [n for n, d in registry.DATASETS.items() if all(f.sha256 for f in d.files)]
    elif args.names:
        names = args.names
    else:
        print("error: name a data set (`deeprnn data list`) or give --all", file=sys.stderr)
        return 2
    for name in names:
        for path in registry.fetch(name, data_dir=args.data_dir).values():
            print(path)
    return 0


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return {"list": list_datasets, "fetch": fetch}[args.command](args)
    except registry.DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
