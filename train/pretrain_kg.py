"""Stage ``pretrain-kg``: link prediction over the DBpedia (+ metadata) triples.

An R-GCN encoder with a DistMult decoder, score(h, r, t) = sum(e_h * w_r * e_t) (Schlichtkrull et
al. 2018, https://arxiv.org/abs/1703.06103), trained with binary cross-entropy against corrupted
triples (head or tail replaced by a uniform random entity). A held-out share of the triples is
removed from the message-passing graph; half of it validates (early stopping on MRR), half is the
test set reported at the end. MRR and Hits@10 are raw (other true tails are not filtered out), each
held-out triple's tail ranked against every entity.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from safetensors.torch import save_file
from torch import nn

from crs.io import write_json
from kg.rgcn import RGCNEncoder, message_passing_graph
from train.common import StageContext
from train.loop import is_main_process, run_loop

logger = logging.getLogger(__name__)

STAGE = "pretrain-kg"
ENCODER_FILE = "encoder.safetensors"


@dataclass
class LinkOutput:
    loss: torch.Tensor


class LinkPredictor(nn.Module):
    def __init__(self, encoder: RGCNEncoder, num_relations: int):
        super().__init__()
        self.encoder = encoder
        self.relations = nn.Parameter(torch.ones(num_relations, encoder.dim) + 0.1 * torch.randn(num_relations, encoder.dim))

    def score(self, embeddings: torch.Tensor, heads: torch.Tensor, relations: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
        return (embeddings[heads] * self.relations[relations] * embeddings[tails]).sum(-1)  # (T,)

    def forward(self, heads: torch.Tensor, relations: torch.Tensor, tails: torch.Tensor, labels: torch.Tensor) -> LinkOutput:
        embeddings = self.encoder().embeddings  # (V, D)
        logits = self.score(embeddings, heads, relations, tails)
        return LinkOutput(loss=nn.functional.binary_cross_entropy_with_logits(logits, labels))

    @torch.no_grad()
    def rank_tails(self, heads: torch.Tensor, relations: torch.Tensor, tails: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """1-based raw rank of each true tail among all entities (ties counted against it)."""
        embeddings = self.encoder().embeddings
        ranks = []
        for start in range(0, len(heads), chunk):
            part = slice(start, start + chunk)
            query = embeddings[heads[part]] * self.relations[relations[part]]  # (T, D)
            scores = query @ embeddings.T  # (T, V)
            true = scores.gather(1, tails[part].unsqueeze(1))  # (T, 1)
            ranks.append((scores >= true).sum(1))  # (T,)
        return torch.cat(ranks)


def link_metrics(model: LinkPredictor, triples: torch.Tensor) -> dict[str, float]:
    ranks = model.rank_tails(triples[:, 0], triples[:, 1], triples[:, 2]).float()
    return {"mrr": float((1.0 / ranks).mean()), "hits@10": float((ranks <= 10).float().mean())}


def run(ctx: StageContext, progress: bool = True) -> dict:
    config, kg = ctx.config, ctx.kg
    out = ctx.stage_dir(STAGE)
    generator = torch.Generator().manual_seed(config.seed)
    is_fact = kg.edge_type != kg.self_loop_relation if kg.self_loop_relation is not None else torch.ones_like(kg.edge_type, dtype=torch.bool)
    fact_ids = is_fact.nonzero().squeeze(1)
    fact_ids = fact_ids[torch.randperm(len(fact_ids), generator=generator)]
    held = int(len(fact_ids) * config.pretrain_kg.holdout_fraction)
    valid_ids, test_ids, train_ids = fact_ids[: held // 2], fact_ids[held // 2 : held], fact_ids[held:]
    drop = torch.zeros_like(is_fact)
    drop[fact_ids[:held]] = True
    edge_index, edge_type, relation_types = message_passing_graph(kg, config.rgcn.min_relation_edges, config.rgcn.inverse_relations, drop=drop)
    torch.manual_seed(config.seed)  # the same initial weights in every run (and on every process of a launch)
    encoder = RGCNEncoder(kg.num_entities, len(relation_types), config.rgcn.dim, config.rgcn.num_layers, config.rgcn.num_bases, config.rgcn.dropout)
    encoder.set_graph(edge_index, edge_type)
    model = LinkPredictor(encoder, kg.num_relations)

    def as_triples(ids: torch.Tensor) -> torch.Tensor:
        return torch.stack([kg.edge_index[0, ids], kg.edge_type[ids], kg.edge_index[1, ids]], dim=1)  # (T, 3)

    train_triples = as_triples(train_ids)
    valid_triples = as_triples(valid_ids)[: config.pretrain_kg.eval_triples]
    test_triples = as_triples(test_ids)[: config.pretrain_kg.eval_triples]
    loop = config.pretrain_kg.loop
    negatives = config.pretrain_kg.negatives

    def batches(epoch: int):
        order = torch.randperm(len(train_triples))
        for start in range(0, len(order), loop.batch_size):
            positive = train_triples[order[start : start + loop.batch_size]]  # (P, 3)
            negative = positive.repeat(negatives, 1)  # (P*k, 3)
            corrupt_head = torch.rand(len(negative)) < 0.5
            random_entities = torch.randint(0, kg.num_entities, (len(negative),))
            negative[:, 0] = torch.where(corrupt_head, random_entities, negative[:, 0])
            negative[:, 2] = torch.where(corrupt_head, negative[:, 2], random_entities)
            triples = torch.cat([positive, negative])
            labels = torch.cat([torch.ones(len(positive)), torch.zeros(len(negative))])
            yield {"heads": triples[:, 0], "relations": triples[:, 1], "tails": triples[:, 2], "labels": labels}

    logger.info("%s: %d training, %d validation, %d test triples; %d relation types for message passing",
                STAGE, len(train_triples), len(valid_triples), len(test_triples), len(relation_types))
    result = run_loop(model, batches, lambda m: link_metrics(m, valid_triples), "mrr", loop, out / "loop", desc=STAGE, seed=config.seed, progress=progress)
    if not is_main_process():  # the main process writes the stage's outputs
        return {"best_epoch": result.best_epoch, "history": result.history}
    model.eval()
    metrics = {
        "valid": link_metrics(model, valid_triples),
        "test": link_metrics(model, test_triples),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_loss_first_last": [result.history[0]["train_loss"], result.history[-1]["train_loss"]],
        "relation_types": relation_types,
        "triples": {"train": len(train_triples), "valid": len(valid_triples), "test": len(test_triples)},
    }
    save_file({k: v.contiguous() for k, v in model.encoder.state_dict().items()}, str(out / ".encoder.tmp.safetensors"))
    (out / ".encoder.tmp.safetensors").replace(out / ENCODER_FILE)
    write_json(out / "metrics.json", metrics)
    logger.info("%s: test MRR %.4f, Hits@10 %.4f", STAGE, metrics["test"]["mrr"], metrics["test"]["hits@10"])
    return metrics
