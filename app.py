"""The crs web UI: ``python app.py [--checkpoint DIR] [--host 127.0.0.1] [--port 7860]``.

A thin Gradio shell over :mod:`crs.chat`; every handler is an importable function there.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gradio as gr

from crs.chat import DEFAULT_CHECKPOINT, respond_without_model


def build_demo(checkpoint: Path = DEFAULT_CHECKPOINT) -> gr.Blocks:
    with gr.Blocks(title="crs — movie recommender") as demo:
        gr.Markdown("# crs — a conversational movie recommender")
        if not (checkpoint / "config.json").is_file():
            gr.Markdown(f"**No model yet**: `{checkpoint}` has no checkpoint. Chat replies say so until one is trained.")
        chatbot = gr.Chatbot(label="Chat", sanitize_html=True)
        message = gr.Textbox(label="Your message", placeholder="I loved The Matrix, anything similar?")
        message.submit(
            lambda text, history: (respond_without_model(text, history, checkpoint), ""),
            inputs=[message, chatbot],
            outputs=[chatbot, message],
            api_name="chat",
        )
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the crs chat UI.")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    args = parser.parse_args(argv)
    auth = os.environ.get("CRS_AUTH")  # "user:password" turns on basic auth
    demo = build_demo(args.checkpoint)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=tuple(auth.split(":", 1)) if auth else None,
    )


if __name__ == "__main__":
    main()
