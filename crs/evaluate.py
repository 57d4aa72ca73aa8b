"""``python -m crs.evaluate``: the evaluation harness's command line (see :mod:`crs.eval.harness`)."""

from crs.eval.harness import main

if __name__ == "__main__":
    main()
