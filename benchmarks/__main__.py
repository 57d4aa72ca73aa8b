"""``python -m benchmarks [--quick] [--out docs/benchmarks] [--parts steps,rss,eval,train,load]``:
the benchmark suite (see :mod:`benchmarks.suite`)."""

from benchmarks.suite import main

if __name__ == "__main__":
    raise SystemExit(main())
