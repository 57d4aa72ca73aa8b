"""The trained recommender as a :class:`crs.rec.model.Recommender`: featurise, encode, score.

A checkpoint folder holds everything scoring needs, with no dataset present:

    config.json                 crs config, library versions, data checksums
    recommender.safetensors     model weights (item text embeddings included)
    ensemble/member-<i>.safetensors   with rec.ensemble > 1: the other networks' weights (i = 1, 2, ...)
    kg/                         entities.json, relations.json, triples.safetensors,
                                catalogue.json (facts only), cooccurrence.safetensors,
                                plot_words.json (what the plots say about words, for linking; optional)
    metrics.json, MODEL_CARD.md written by the training stage
"""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from crs import __version__
from crs.config import CRSConfig
from crs.data.catalogue import Catalogue
from crs.data.context import DialogueContext
from crs.io import CheckpointFileError, atomic_dir, verify_files, write_json
from crs.rec.features import ContextFeatures, Featurizer, movie_text
from crs.rec.interface import BaseRecommender
from crs.rec.model import KGTextRecModel
from crs.rec.neighbours import NEIGHBOURS_FILE, NeighbourIndex
from crs.rec.repeat import GATE_FILE, RepeatGate
from crs.text.encoder import TextEncoder, TunableTop, encode_hidden
from crs.text.sentiment import LikedClassifier, SentimentScorer
from kg.evidence import PlotWords
from kg.graph import KnowledgeGraph, read_kg, save_kg
from kg.linker import EntityLinker
from kg.rgcn import message_passing_graph

logger = logging.getLogger(__name__)

TEXT_CACHE_SIZE = 50_000
# Parts the recommender does not read: the generator's (a broken one leaves the recommender serving).
GENERATOR_PARTS = ("generator", "tokenizer", "lm", "exemplars", "prompt", "goal_head.json", "topic_head.json", "goal_bias.json")
ENSEMBLE_DIR = "ensemble"
PLOT_WORDS_FILE = "kg/plot_words.json"  # kg.evidence.PlotWords of the training catalogue's plots


def read_plot_words(path: Path) -> PlotWords | None:
    """A checkpoint's :class:`kg.evidence.PlotWords`; None when it has none (checkpoints written before
    it, linked as before); a :class:`CheckpointFileError` naming the file when it does not read."""
    if not path.is_file():
        return None
    try:
        return PlotWords.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise CheckpointFileError(path, f"corrupt: {error}") from None


def write_plot_words(folder: Path, words: PlotWords) -> None:
    """Write ``words`` as the checkpoint in ``folder``'s :data:`PLOT_WORDS_FILE`."""
    write_json(folder / PLOT_WORDS_FILE, words.to_dict())


REQUIRED_FILES = ("config.json", "recommender.safetensors", "kg/entities.json", "kg/relations.json",
                  "kg/triples.safetensors", "kg/catalogue.json", "kg/cooccurrence.safetensors")


def build_model(config: CRSConfig, kg: KnowledgeGraph, catalogue: Catalogue, item_text: torch.Tensor | None,
                text_encoder: TextEncoder | None = None) -> KGTextRecModel:
    edge_index, edge_type, relation_types = message_passing_graph(kg, config.rgcn.min_relation_edges, config.rgcn.inverse_relations)
    item_entities = torch.tensor([kg.movie_to_entity[m.movie_id] for m in catalogue.movies], dtype=torch.long)
    text_top = None
    if config.rec.use_text and config.text.tune_top_layers:
        if text_encoder is None:
            raise ValueError("text.tune_top_layers needs the sentence encoder")
        text_top = TunableTop(text_encoder, config.text.tune_top_layers)
    model = KGTextRecModel(config.rec, config.rgcn, kg.num_entities, len(relation_types), item_entities,
                           item_text if config.rec.use_text else None, text_top, config.text.tune_lr)
    if config.rec.use_kg:
        model.encoder.set_graph(edge_index, edge_type)
    return model


class KGTextRecommender(BaseRecommender):
    """Scores the catalogue for a dialogue context with a trained :class:`KGTextRecModel`."""

    def __init__(self, config: CRSConfig, model: KGTextRecModel, featurizer: Featurizer, text_encoder: TextEncoder | None,
                 name: str = "kg-text", liked: LikedClassifier | None = None):
        super().__init__(featurizer.catalogue)
        self.config, self.model, self.featurizer, self.text_encoder, self.name = config, model.eval(), featurizer, text_encoder, name
        self.liked = liked
        self.repeat_gate: RepeatGate | None = None  # crs.rec.repeat: mentioned movies against new ones
        self.neighbours: NeighbourIndex | None = None  # crs.rec.neighbours: movies after similar training contexts
        self._entity_embeddings: torch.Tensor | None = None
        # With rec.ensemble > 1: the other networks, trained alike from other seeds; scores average
        # the log-softmax of every network's (``model`` first).
        self.members: list[KGTextRecModel] = []
        self._member_embeddings: list[torch.Tensor | None] = []
        self._text_cache: dict[str, np.ndarray] = {}
        self._hidden_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        # contexts -> (B, rec_state_dim): the generator's [REC] state, when the model takes one
        # (attached by whoever loads the generator too: crs.serve.pipeline.CRS.from_pretrained).
        self.state_source: Callable[[list[DialogueContext]], torch.Tensor] | None = None

    def rec_state(self, contexts: list[DialogueContext]) -> torch.Tensor | None:
        """The generator's ``[REC]`` state for ``contexts`` when the model was trained with it."""
        if not self.config.rec.rec_state_dim:
            return None
        if self.state_source is None:
            raise RuntimeError("this recommender was trained with the generator's [REC] state (rec.rec_state_dim "
                               f"{self.config.rec.rec_state_dim}) but has no generator to compute it")
        return self.state_source(contexts)

    @property
    def kg(self) -> KnowledgeGraph:
        return self.featurizer.kg

    def refresh(self) -> None:
        """Forget cached entity (and, with a tuned encoder top, context) embeddings after the weights changed."""
        self._entity_embeddings = None
        self._member_embeddings = []
        if self.model.config.use_text and self.model.text_top is not None:
            self._text_cache.clear()

    @torch.no_grad()
    def entity_embeddings(self) -> torch.Tensor | None:
        if self.config.rec.use_kg and self._entity_embeddings is None:
            self._entity_embeddings = self.model.entity_embeddings()
        return self._entity_embeddings

    @torch.no_grad()
    def score_batch(self, contexts: list[DialogueContext], rec_state: torch.Tensor | None = None,
                    text_embeddings: np.ndarray | None = None) -> np.ndarray:
        if not contexts:
            return np.zeros((0, len(self.catalogue)), dtype=np.float32)
        if rec_state is None:
            rec_state = self.rec_state(contexts)
        return self.score_features(self.featurizer.features_batch(contexts), rec_state, text_embeddings,
                                   num_turns=[len(c.turns) for c in contexts])

    @torch.no_grad()
    def score_features(self, features: list[ContextFeatures], rec_state: torch.Tensor | None = None,
                       text_embeddings: np.ndarray | None = None, num_turns: list[int] | None = None) -> np.ndarray:
        """Scores of shape (len(features), num_items) for contexts already featurised: the model's, fused
        with the context neighbours' votes when the checkpoint has them (:mod:`crs.rec.neighbours`), and,
        with a repeat gate and ``num_turns`` (the contexts' turn counts), as gated log-probabilities
        (:mod:`crs.rec.repeat`)."""
        text = None
        if self.config.rec.use_text:
            if text_embeddings is None:
                text_embeddings = self.encode_texts([f.text for f in features])
            text = torch.as_tensor(text_embeddings)
        batch = self.featurizer.collate(features, text)
        output = self.model(**batch, rec_state=rec_state, entity_embeddings=self.entity_embeddings())
        scores = output.scores.float()
        if self.members:
            if len(self._member_embeddings) != len(self.members):
                self._member_embeddings = [m.entity_embeddings() if self.config.rec.use_kg else None for m in self.members]
            logs = [torch.log_softmax(scores, dim=-1)]
            for member, embeddings in zip(self.members, self._member_embeddings):
                member_scores = member(**batch, rec_state=rec_state, entity_embeddings=embeddings).scores.float()
                logs.append(torch.log_softmax(member_scores, dim=-1))
            scores = torch.stack(logs).mean(dim=0)
        scores = scores.numpy()
        if self.neighbours is not None and text is not None:
            scores = self.neighbours.fuse(scores, text.numpy())
        if self.repeat_gate is not None and num_turns is not None:
            scores = self.repeat_gate.apply(scores, features, num_turns)
        return scores

    def score_items(self, context: DialogueContext) -> np.ndarray:
        return self.score_batch([context])[0]

    def mentioned_items(self, context: DialogueContext) -> list[int]:
        """Movies given by the caller plus those linked in the turns' text."""
        return self._mentioned(context, self.featurizer.features(context))

    def _mentioned(self, context: DialogueContext, features: ContextFeatures) -> list[int]:
        return sorted(set(super().mentioned_items(context)) | set(features.mention_items))

    def top_k(self, context: DialogueContext, k: int = 10, exclude_mentioned: bool = True,
              exclude: Iterable[int] = ()) -> list[tuple[int, float]]:
        """As the base class, but linking and featurising the context once for scores and exclusions."""
        return self.top_k_batch([context], k, exclude_mentioned, [exclude])[0]

    def top_k_batch(self, contexts: list[DialogueContext], k: int = 10, exclude_mentioned: bool = True,
                    exclude: list[Iterable[int]] | None = None) -> list[list[tuple[int, float]]]:
        """:meth:`top_k` of each context, scored in one batch; ``exclude[i]``: more movie ids to leave out."""
        scores, excluded = self._scores_and_excluded(contexts, exclude_mentioned, exclude)
        return [self.best_of(row, left_out, k) for row, left_out in zip(scores, excluded)]

    def scores_and_excluded(self, context: DialogueContext, exclude: Iterable[int] = ()) -> tuple[np.ndarray, list[int]]:
        """The context's score vector and the catalogue indices :meth:`top_k` would leave out
        (mentioned movies and ``exclude``), for callers that order the catalogue themselves."""
        scores, excluded = self.scores_and_excluded_batch([context], [exclude])
        return scores[0], excluded[0]

    def scores_and_excluded_batch(self, contexts: list[DialogueContext], exclude: list[Iterable[int]]) -> tuple[np.ndarray, list[list[int]]]:
        """:meth:`scores_and_excluded` of each context, scored in one batch."""
        return self._scores_and_excluded(contexts, True, exclude)

    def _scores_and_excluded(self, contexts: list[DialogueContext], exclude_mentioned: bool,
                             exclude: list[Iterable[int]] | None) -> tuple[np.ndarray, list[list[int]]]:
        features = self.featurizer.features_batch(contexts)
        scores = self.score_features(features, self.rec_state(contexts), num_turns=[len(c.turns) for c in contexts])
        excluded = []
        for row, (context, f) in enumerate(zip(contexts, features)):
            left_out = set(self._mentioned(context, f)) if exclude_mentioned else set()
            left_out |= {self.catalogue.index(m) for m in (exclude[row] if exclude else ()) if m in self.catalogue}
            excluded.append(sorted(left_out))
        return scores, excluded

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Context embeddings. The frozen encoder memoises them itself; with tuned top layers they
        are memoised here until the weights change (:meth:`refresh`)."""
        top = self.model.text_top if self.config.rec.use_text else None
        if top is None:
            return self.text_encoder.encode(texts, truncate_left=True)
        todo = list(dict.fromkeys(t for t in texts if t not in self._text_cache))
        if todo:
            if len(self._text_cache) > TEXT_CACHE_SIZE:
                self._text_cache.clear()
            states, masks = self.hidden_states(todo, top.first_layer)
            with torch.no_grad():
                embeddings = top(torch.as_tensor(states).float(), torch.as_tensor(masks).long()).numpy()
            self._text_cache.update(zip(todo, embeddings))
        return np.stack([self._text_cache[t] for t in texts])

    def hidden_states(self, texts: list[str], layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Frozen lower-layer outputs for texts, memoised (they never change during training)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._hidden_cache))
        if todo:
            if len(self._hidden_cache) > TEXT_CACHE_SIZE:
                self._hidden_cache.clear()
            states, masks = encode_hidden(self.text_encoder, todo, layer)
            self._hidden_cache.update((t, (s, m)) for t, s, m in zip(todo, states, masks))
        return np.stack([self._hidden_cache[t][0] for t in texts]), np.stack([self._hidden_cache[t][1] for t in texts])

    def remember_texts(self, texts: list[str], embeddings: np.ndarray) -> None:
        """Seed the encoder's memo with context embeddings computed elsewhere (training precomputes them)."""
        self.text_encoder.remember(texts, embeddings, truncate_left=True)

    # ------------------------------------------------------------------ persistence

    def save_pretrained(self, folder: str | Path, metrics: dict | None = None, model_card: str | None = None,
                        data_checksums: dict[str, str] | None = None, extra: Callable[[Path], None] | None = None) -> None:
        """Write the checkpoint atomically (a temporary folder renamed into place); ``extra(tmp)``
        may add more parts (the generator) before the rename."""
        import transformers

        with atomic_dir(folder) as tmp:
            meta = {
                "crs_config": OmegaConf.to_container(OmegaConf.structured(self.config)),
                "name": self.name,
                "versions": {"crs": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
                             "python": platform.python_version()},
                "data_sha256": data_checksums or {},
                "text_encoder": self.text_encoder.name if self.text_encoder else None,
            }
            (tmp / "config.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
            self.save_weights(tmp / "recommender.safetensors")
            self.save_members(tmp)
            save_kg(self.kg, tmp / "kg")
            self.catalogue.save(tmp / "kg" / "catalogue.json")
            if self.featurizer.linker.plot_words is not None:
                write_plot_words(tmp, self.featurizer.linker.plot_words)
            cooc = self.featurizer.cooccurrence
            save_file({"indices": cooc.indices().contiguous(), "values": cooc.values().contiguous(),
                       "shape": torch.tensor(list(cooc.shape))}, str(tmp / "kg" / "cooccurrence.safetensors"))
            if metrics is not None:
                (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True), encoding="utf-8")
            if self.liked is not None:
                self.liked.save(tmp / "liked.safetensors")
            self.save_fusion(tmp)
            if model_card is not None:
                (tmp / "MODEL_CARD.md").write_text(model_card, encoding="utf-8")
            if extra is not None:
                extra(tmp)

    def save_weights(self, path: str | Path) -> None:
        """The model's weights, fp16 on disk (embedding tables dominate them; loaded back as float32)."""
        save_file(half_state(self.model), str(path))

    def save_members(self, folder: str | Path) -> None:
        """The other networks of an ensemble as ``ensemble/member-<i>.safetensors`` in ``folder`` (fp16),
        an earlier ``ensemble/`` replaced; nothing without members."""
        import shutil

        target = Path(folder) / ENSEMBLE_DIR
        if target.is_dir():
            shutil.rmtree(target)
        if not self.members:
            return
        target.mkdir(parents=True)
        for i, member in enumerate(self.members, start=1):
            save_file(half_state(member), str(target / f"member-{i}.safetensors"))

    def save_fusion(self, folder: str | Path) -> None:
        """The late-fusion parts into ``folder`` (the repeat gate and the context neighbours), an
        earlier file of a part this recommender lacks removed."""
        folder = Path(folder)
        for part, name in ((self.repeat_gate, GATE_FILE), (self.neighbours, NEIGHBOURS_FILE)):
            if part is not None:
                part.save(folder / name)
            elif (folder / name).is_file():
                (folder / name).unlink()

    @classmethod
    def from_pretrained(cls, folder: str | Path, text_encoder: TextEncoder | None = None,
                        encoders: dict[tuple[str, int], TextEncoder] | None = None) -> "KGTextRecommender":
        """Load a checkpoint; a missing or broken part is named in the error.

        ``encoders`` shares sentence encoders (and their memo) between checkpoints loaded together,
        keyed by (model name, max tokens)."""
        from crs.config import config_from_dict

        folder = Path(folder)
        missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"checkpoint {folder} is incomplete: missing {', '.join(missing)}")
        # A truncated or garbled file is named before anything reads it (the generator's parts are the pipeline's to check).
        verify_files(folder, skip=GENERATOR_PARTS)
        meta = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if "crs_config" not in meta:
            raise ValueError(f"checkpoint {folder}: config.json has no 'crs_config'")
        config = config_from_dict(meta["crs_config"])
        kg = read_kg(folder / "kg")
        catalogue = Catalogue.read(folder / "kg" / "catalogue.json")
        plot_words = read_plot_words(folder / PLOT_WORDS_FILE)
        cooc_file = load_file(str(folder / "kg" / "cooccurrence.safetensors"))
        cooc = torch.sparse_coo_tensor(cooc_file["indices"], cooc_file["values"], tuple(cooc_file["shape"].tolist()), check_invariants=True)
        weights = read_weights(folder / "recommender.safetensors")
        item_text = weights.get("item_text")
        if (config.rec.use_text or config.rec.use_sentiment) and text_encoder is None:
            key = (meta.get("text_encoder") or config.text.model, config.text.max_context_tokens)
            shared = encoders if encoders is not None else {}
            text_encoder = shared.get(key) or TextEncoder(*key)
            shared[key] = text_encoder
        model = load_weights(build_model(config, kg, catalogue, item_text, text_encoder), weights, folder / "recommender.safetensors")
        members = []
        for i in range(1, config.rec.ensemble):
            path = folder / ENSEMBLE_DIR / f"member-{i}.safetensors"
            if not path.is_file():
                raise FileNotFoundError(f"checkpoint {folder} is incomplete: missing {ENSEMBLE_DIR}/member-{i}.safetensors "
                                        f"(rec.ensemble is {config.rec.ensemble})")
            member_weights = read_weights(path)
            member = load_weights(build_model(config, kg, catalogue, member_weights.get("item_text"), text_encoder), member_weights, path)
            members.append(share_buffers(member, model))
        linker = EntityLinker.build(kg, catalogue, config.linking, plot_words)
        liked = sentiment = None
        if config.rec.use_sentiment:
            if not (folder / "liked.safetensors").is_file():
                raise FileNotFoundError(f"checkpoint {folder} is incomplete: missing liked.safetensors (rec.use_sentiment is on)")
            liked = LikedClassifier.load(folder / "liked.safetensors")
            sentiment = SentimentScorer(text_encoder, liked)
        featurizer = Featurizer(catalogue, kg, linker, cooc, config.rec.max_context_entities, sentiment)
        recommender = cls(config, model, featurizer, text_encoder, name=meta.get("name", "kg-text"), liked=liked)
        recommender.members = [member.eval() for member in members]
        if (folder / GATE_FILE).is_file():
            recommender.repeat_gate = RepeatGate.load(folder / GATE_FILE)
        if (folder / NEIGHBOURS_FILE).is_file():
            recommender.neighbours = NeighbourIndex.load(folder / NEIGHBOURS_FILE)
        return recommender


def half_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A network's weights as saved: floats in fp16 (embedding tables dominate them; loaded back as float32)."""
    return {name: tensor.detach().half().contiguous() if tensor.is_floating_point() else tensor.contiguous()
            for name, tensor in model.state_dict().items()}


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A network's saved weights, floats back in float32."""
    return {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in load_file(str(path)).items()}


def load_weights(model: KGTextRecModel, weights: dict[str, torch.Tensor], path: Path) -> KGTextRecModel:
    """``model`` with ``weights`` (read from ``path``) loaded; a file that does not fit the config is named."""
    try:
        missing_keys, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as error:  # a tensor of another shape than config.json builds
        detail = next((line.strip() for line in str(error).splitlines() if "size mismatch" in line), str(error).splitlines()[0])
        raise CheckpointFileError(path, f"shape mismatch with config.json ({detail})") from None
    if missing_keys or unexpected:
        raise CheckpointFileError(path, "does not fit config.json "
                                  f"(missing {missing_keys[:5]}, unexpected {unexpected[:5]})")
    return model


def share_buffers(member: KGTextRecModel, model: KGTextRecModel) -> KGTextRecModel:
    """``member`` holding ``model``'s tensors for the buffers both have equal (the movies' text
    embeddings and entities, the graph's edges), so an ensemble keeps one copy of each in memory."""
    for name, tensor in list(member.named_buffers()):
        owner_name, _, attribute = name.rpartition(".")
        owner, source = member.get_submodule(owner_name), model.get_buffer(name)
        if tensor is not source and tensor.shape == source.shape and tensor.dtype == source.dtype and torch.equal(tensor, source):
            setattr(owner, attribute, source)
    return member


def item_texts(catalogue: Catalogue) -> list[str]:
    return [movie_text(movie) for movie in catalogue.movies]

