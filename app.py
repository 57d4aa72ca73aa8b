"""``python app.py [--checkpoint DIR] [--host 127.0.0.1] [--port 7860] [--share]``: the web UI.

The code is :mod:`crs.app` (installed, ``crs chat`` runs the same); this file keeps ``python app.py``
and ``import app`` working in a checkout.
"""

from crs.app import build_demo, main, movie_choices, parse_auth, serve_in_background  # noqa: F401

if __name__ == "__main__":
    main()
