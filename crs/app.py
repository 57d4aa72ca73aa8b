"""The crs web UI: ``crs chat`` or ``python app.py [--checkpoint DIR] [--host 127.0.0.1] [--port 7860] [--share]``.

A thin Gradio shell: every handler is an importable pure function in :mod:`crs.ui.chat` and
:mod:`crs.tasks`; this file only lays out components and wires events. Tabs: Chat, Next movie,
Explain, Zero-shot, Liked?, Evaluate. Named API endpoints (``gradio_client``): ``/chat``,
``/next_movie``, ``/explain``, ``/zero_shot``, ``/liked``; see the README.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import socket
from functools import partial
from pathlib import Path

import gradio as gr

from crs.eval.simulator import SIMULATORS
from crs.precision import CHOICES as PRECISIONS
from crs.precision import freeze_loaded_objects, start_inference
from crs.serve.chat import DEFAULT_CHECKPOINT, EMPTY_NOTICE, ChatState, record_feedback
from crs.serve.models import Models
from crs.ui import api, views
from crs.ui.chat import cards_html, stream_turn
from crs.ui.evaluation import HEADERS as METRIC_HEADERS
from crs.ui.interactive import interactive_steps
from crs.ui.zero_shot import default_template, named_templates

logger = logging.getLogger(__name__)

TITLE = "crs — movie recommender"
TEST_DIALOGUES = 1342  # dialogues in ReDial's official test split
ONEDNN_KERNEL_CACHE = 64  # oneDNN kernels kept for reuse (see main)
CHAT_CONCURRENCY = 32  # chat turns in progress at once (the UI's and /chat's together), batched as they arrive
EVALUATE_MODES = ["Replay (Recall@k)", "Interactive (simulated seeker)"]
CARD_CSS = """
.movie-cards { display: flex; flex-direction: column; gap: 8px; }
.movie-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; }
.movie-title { font-weight: 600; }
.movie-year { font-weight: 400; opacity: 0.8; }
"""
EXAMPLE_DIALOGUE = ("Seeker: Hi! I watched The Matrix last week and loved it, the action was amazing.\n"
                    "Recommender: Great! Have you seen Inception?\n"
                    "Seeker: Yes, but I did not like it, too confusing.")


def movie_choices(models: Models) -> list[str]:
    """Catalogue display names, the most mentioned first (for the autocomplete dropdowns)."""
    if models.pipeline is None:
        return []
    movies = sorted(models.pipeline.catalogue.movies, key=lambda m: -m.mentions)
    return list(dict.fromkeys(m.display_name for m in movies))


class MovieDropdowns(list):
    """The dropdowns that autocomplete catalogue titles. They are built empty and filled when a page
    loads (:func:`build_demo`): the ~7,000 titles would otherwise be copied into the app's config
    once per dropdown (4 MB), which every browser and every API client fetches and the server
    copies for each of them."""

    def add(self, **options) -> gr.Dropdown:
        dropdown = gr.Dropdown(choices=[], allow_custom_value=True, **options)
        self.append(dropdown)
        return dropdown


def liked_dropdown(dropdowns: MovieDropdowns, label: str = "Movies you liked") -> gr.Dropdown:
    return dropdowns.add(value=[], multiselect=True, label=label, info="Type to search the catalogue.")


# ---------------------------------------------------------------------- handlers (Gradio glue only)


def chat_handler(models: Models, message: str, state: ChatState):
    """Stream one chat turn; notices about the input appear as toasts."""
    note = models.note if models.pipeline is None else ""
    for view in stream_turn(models.pipeline, message, state, checkpoint=models.checkpoint, run=models.chat_turn, note=note):
        if view.notice:
            (gr.Warning if view.notice == EMPTY_NOTICE else gr.Info)(view.notice)
        yield view.messages, view.cards, view.state, ""


def new_conversation(models: Models):
    catalogue = models.pipeline.catalogue if models.pipeline is not None else None
    return [], cards_html(catalogue, []) if catalogue is not None else "", ChatState(), ""


def like_handler(state: ChatState, data: gr.LikeData) -> ChatState:
    return record_feedback(state, data.index, data.liked)


def evaluate_handler(models: Models, dialogues: float, progress=gr.Progress(track_tqdm=True)):
    return views.evaluate_view(models, dialogues)


def interactive_handler(models: Models, dialogue: str, simulator: str):
    yield from interactive_steps(models, dialogue, simulator)


# ---------------------------------------------------------------------- layout


def chat_tab(models: Models) -> None:
    catalogue = models.pipeline.catalogue if models.pipeline is not None else None
    state = gr.State(ChatState())
    with gr.Row():
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(label="Chat", elem_id="chat", height=560, sanitize_html=True, allow_tags=False,
                                 latex_delimiters=[], render_markdown=True, feedback_options=("Like", "Dislike"),
                                 buttons=["copy", "copy_all"])
            message = gr.Textbox(label="Your message", placeholder="I loved The Matrix, anything similar?", elem_id="message")
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="send")
                reset = gr.Button("New conversation", elem_id="new-conversation")
        with gr.Column(scale=2):
            gr.Markdown("### Recommended movies")
            cards = gr.HTML(cards_html(catalogue, []) if catalogue is not None else "", elem_id="movie-cards",
                            css_template=CARD_CSS, js_on_load=None)
    handler = partial(chat_handler, models)
    outputs = [chatbot, cards, state, message]
    message.submit(handler, [message, state], outputs, api_name="chat_stream", api_visibility="undocumented",
                   concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
    send.click(handler, [message, state], outputs, api_visibility="private", concurrency_limit=CHAT_CONCURRENCY,
               concurrency_id="chat")
    reset.click(partial(new_conversation, models), None, outputs, api_visibility="private")
    chatbot.clear(partial(new_conversation, models), None, outputs, api_visibility="private")  # the chat's own bin button
    chatbot.like(like_handler, [state], [state], api_visibility="private")


def next_movie_tab(models: Models, dropdowns: MovieDropdowns) -> None:
    gr.Markdown("Pick movies you liked: the trained recommender and the tuning-free language-model prompt each suggest what to watch next.")
    liked = liked_dropdown(dropdowns)
    k = gr.Slider(1, 20, value=10, step=1, label="How many")
    go = gr.Button("Recommend", variant="primary")
    note = gr.Markdown()
    with gr.Row():
        recommender = gr.Dataframe(headers=views.RANKING_HEADERS, label="Recommender", interactive=False)
        language_model = gr.Dataframe(headers=views.RANKING_HEADERS, label="Language model (tuning-free prompt)", interactive=False)
    go.click(partial(views.next_movie_view, models), [liked, k], [note, recommender, language_model], api_visibility="private")


def explain_tab(models: Models, dropdowns: MovieDropdowns) -> None:
    gr.Markdown("Why would a movie suit you? The knowledge-graph facts that connect it to movies you liked, "
                "and a sentence that states only those facts.")
    movie = dropdowns.add(value=None, label="Movie to explain", elem_id="explain-movie")
    liked = liked_dropdown(dropdowns)
    go = gr.Button("Explain", variant="primary")
    sentence = gr.Markdown()
    paths = gr.Markdown()
    facts = gr.Dataframe(headers=views.FACT_HEADERS, label="Knowledge-graph facts", interactive=False)
    go.click(partial(views.explain_view, models), [movie, liked], [sentence, facts, paths], api_visibility="private")


def zero_shot_tab(models: Models, dropdowns: MovieDropdowns) -> None:
    gr.Markdown("Tuning-free prompting: the pre-trained language model scores each candidate under your hard prompt; "
                "`{liked}` is replaced by the movies you liked. No weight is tuned for the task.")
    if models.ranker is None:
        gr.Markdown(views.note_markdown(models.ranker_note if models.pipeline is not None else models.note))
    templates = named_templates()
    start = gr.Dropdown(choices=list(templates), value=None, label="Start from a template in prompts/zero_shot.yaml")
    template = gr.Textbox(value=default_template(models.ranker), lines=4, label="Prompt template")
    start.change(lambda name: templates.get(name, ""), [start], [template], api_visibility="private")
    liked = liked_dropdown(dropdowns)
    k = gr.Slider(1, 20, value=10, step=1, label="How many")
    go = gr.Button("Rank", variant="primary")
    note = gr.Markdown()
    ranking = gr.Dataframe(headers=views.RANKING_HEADERS, label="Language-model ranking", interactive=False)
    go.click(partial(views.zero_shot_view, models), [liked, template, k], [note, ranking], api_visibility="private")


def liked_tab(models: Models, dropdowns: MovieDropdowns, choices: list[str]) -> None:
    gr.Markdown("Did the seeker like a movie? Paste a dialogue (`Seeker:` / `Recommender:` lines) and name a movie it mentions. "
                "The classifier reads the seeker's message that mentions the movie, or, for a movie the recommender brought up, "
                "the seeker's reply to it.")
    dialogue = gr.Textbox(value=EXAMPLE_DIALOGUE, lines=6, label="Dialogue")
    movie = dropdowns.add(value="The Matrix (1999)" if "The Matrix (1999)" in choices else None, label="Movie")
    go = gr.Button("Predict", variant="primary")
    label = gr.Label(label="Prediction", num_top_classes=2)
    evidence = gr.Markdown()
    go.click(partial(views.liked_view, models), [dialogue, movie], [label, evidence], api_visibility="private")


def evaluate_tab(models: Models) -> None:
    mode = gr.Radio(EVALUATE_MODES, value=EVALUATE_MODES[0], label="Mode")
    with gr.Group(visible=True) as replay:
        gr.Markdown("Scripted evaluation: replay the first N ReDial test dialogues and rank every recommender turn's movies "
                    "(standard and new-items Recall@k). Needs the data folder (`CRS_DATA_DIR`).")
        dialogues = gr.Slider(1, TEST_DIALOGUES, value=50, step=1, label="Test dialogues", info="The official test split has 1,342.")
        go = gr.Button("Evaluate", variant="primary")
        summary = gr.Markdown()
        table = gr.Dataframe(headers=METRIC_HEADERS, label="Metrics", interactive=False)
        plot = gr.Plot(label="Recall@k")
    with gr.Group(visible=False) as interactive:
        gr.Markdown("Interactive evaluation: a simulated seeker who wants the movies a real ReDial seeker liked talks to the "
                    "chat, never naming them; success when the chat recommends one. The targets are revealed at the end.")
        dialogue = gr.Textbox(label="Test dialogue", elem_id="interactive-dialogue", placeholder="a conversation id, e.g. 20001; empty: a random one")
        simulator = gr.Radio(list(SIMULATORS), value="rule", label="Simulated seeker")
        simulate = gr.Button("Simulate", variant="primary")
        transcript = gr.Chatbot(label="Simulated conversation", elem_id="interactive-chat", height=420, sanitize_html=True,
                                allow_tags=False, latex_delimiters=[], render_markdown=True)
        outcome = gr.Markdown(elem_id="interactive-outcome")
    mode.change(lambda m: (gr.Group(visible=m == EVALUATE_MODES[0]), gr.Group(visible=m != EVALUATE_MODES[0])), [mode],
                [replay, interactive], api_visibility="private")
    go.click(partial(evaluate_handler, models), [dialogues], [summary, table, plot], api_visibility="private")
    simulate.click(partial(interactive_handler, models), [dialogue, simulator], [transcript, outcome], api_visibility="private")


def api_endpoints(models: Models) -> None:
    """The named endpoints for ``gradio_client``: JSON in, JSON out, no server-side state."""

    def chat(message: str, history: list[dict] | None = None) -> dict:
        """One chat turn. Send the history you got back last time; returns reply, history, movies, notice."""
        return api.chat(models, message, history)

    def next_movie(liked: list[str], k: int = 10) -> dict:
        """Next movies for liked movies (titles or ids): the recommender's and the language model's rankings."""
        return api.next_movie_json(models, liked, k)

    def explain(movie: str, liked: list[str] | None = None) -> dict:
        """Knowledge-graph facts connecting a movie to liked movies, and a sentence stating only them."""
        return api.explain_json(models, movie, liked)

    def zero_shot(liked: list[str], template: str = "", k: int = 10) -> dict:
        """The language model's ranking of the recommender's candidates under a hard prompt ({liked} marks the movies)."""
        return api.zero_shot_json(models, liked, template, k)

    def liked(dialogue: str, movie: str) -> dict:
        """p(the seeker liked the movie) from a dialogue of 'Seeker:' / 'Recommender:' lines."""
        return api.liked_json(models, dialogue, movie)

    # Chat turns of concurrent users are batched (Models.chat_turn), so up to CHAT_CONCURRENCY of them
    # may wait together; the other endpoints take the models' lock one call at a time.
    gr.api(chat, api_name="chat", concurrency_limit=CHAT_CONCURRENCY, concurrency_id="chat")
    for fn in (next_movie, explain, zero_shot, liked):
        gr.api(fn, api_name=fn.__name__)


def preload_matplotlib() -> None:
    """Gradio switches matplotlib to its "agg" backend around every event it processes
    (``gradio.utils.MatplotlibBackendMananger``), so the first event imports matplotlib and pyplot:
    0.56 s on the server's event loop, during which it answers no other request (the first chat
    turns after a start waited for it). Done here, before the app serves, with "agg" already set,
    so the switch is then a no-op; nothing happens where matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("agg")
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        pass


def build_demo(checkpoint: Path = DEFAULT_CHECKPOINT, models: Models | None = None) -> gr.Blocks:
    """The app for ``checkpoint`` (or for models already loaded)."""
    preload_matplotlib()
    models = models or Models.load(checkpoint)
    choices, dropdowns = movie_choices(models), MovieDropdowns()
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown("# crs — a conversational movie recommender")
        if models.pipeline is None:
            broken = (Path(models.checkpoint) / "config.json").is_file()
            head = "**The model could not be loaded.**" if broken else "**No model yet.**"
            gr.Markdown(f"{head} {views.plain_markdown(models.note)} The chat replies say so.", elem_id="no-model")
        elif models.pipeline.generator_note:
            gr.Markdown(f"**Note:** {views.plain_markdown(models.pipeline.generator_note)}", elem_id="generator-note")
        with gr.Tabs():
            with gr.Tab("Chat"):
                chat_tab(models)
            with gr.Tab("Next movie"):
                next_movie_tab(models, dropdowns)
            with gr.Tab("Explain"):
                explain_tab(models, dropdowns)
            with gr.Tab("Zero-shot"):
                zero_shot_tab(models, dropdowns)
            with gr.Tab("Liked?"):
                liked_tab(models, dropdowns, choices)
            with gr.Tab("Evaluate"):
                evaluate_tab(models)
        api_endpoints(models)
        if choices:  # the titles reach a page once it has loaded, not through the config
            demo.load(lambda: [gr.Dropdown(choices=choices) for _ in dropdowns], None, list(dropdowns), queue=False,
                      api_visibility="private")
    return demo


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_in_background(models: Models) -> tuple[gr.Blocks, str]:
    """The app for ``models`` on a free 127.0.0.1 port, served from a background thread (tests,
    benchmarks); returns the app (``close()`` it) and its URL."""
    demo = build_demo(models=models)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo, url


def load_demo(checkpoint: Path) -> gr.Blocks:
    """:func:`build_demo` for a serving process: the cyclic garbage collector is off while the models
    load (about a million objects that live as long as the process; collecting among them meanwhile
    cost 3.4 of 12.3 s of loading here), then what was loaded is frozen out of later collections
    (:func:`crs.precision.freeze_loaded_objects`) and the collector runs as usual."""
    gc.disable()
    try:
        demo = build_demo(checkpoint)
    finally:
        gc.enable()
    freeze_loaded_objects()
    return demo


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``CRS_AUTH="user:password"`` as Gradio's auth pair; malformed values fail clearly."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise SystemExit("CRS_AUTH must look like user:password")
    return user, password


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the crs chat UI.")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    parser.add_argument("--precision", "--encoder-precision", dest="precision", choices=PRECISIONS, default="auto",
                        help="arithmetic of the sentence encoder and of decoding: auto (default) is bf16 where the "
                             "hardware runs it natively, else fp32")
    args = parser.parse_args(argv)
    # oneDNN (it runs the bf16 matrix products) keeps a compiled kernel for every shape it meets, up
    # to 1,024; under load nearly every batch brings new shapes, and that cache alone grew the serving
    # process by about 170 MiB (python -m benchmarks.load). 64 kept the throughput. Set before any
    # kernel is made; a value in the environment wins.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(ONEDNN_KERNEL_CACHE))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logger.info("inference precision: %s (asked: %s)", start_inference(args.precision), args.precision)
    auth = parse_auth(os.environ.get("CRS_AUTH"))
    demo = load_demo(args.checkpoint)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, auth=auth)


if __name__ == "__main__":
    main()
