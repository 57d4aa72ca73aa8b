import os
import json, pickle, sys, numpy as np
from crs.serve.pipeline import CRS
from crs.config import config_from_dict
from crs.data.splits import load_splits
from crs.data.samples import dialogue_samples
from crs.data.context import DialogueContext
from crs.data.redial import RECOMMENDER
from crs.gen.steps import dialogue_examples, render_context
from crs.gen.exemplars import context_key
from crs.gen.goal_head import goal_features
from crs.precision import start_inference
start_inference("auto")
p = CRS.from_pretrained("checkpoints/default")
meta = json.load(open("checkpoints/default/config.json"))
config = config_from_dict(meta["crs_config"]); config.data.data_dir=os.environ["CRS_DATA_DIR"]
splits = load_splits(config.data, with_test=False)
which=sys.argv[1]; n=int(sys.argv[2])
dialogues = (splits.train if which=="train" else splits.valid)[:n]
g=p.generator; cat=p.catalogue
samples, golds, cids = [], [], []
for d in dialogues:
    turns = dialogue_samples(d); samples += turns
    golds += [e.steps.topics for e in dialogue_examples(d, cat.titles, p.linker, turns)]
    cids += [d.conversation_id]*len(turns)
out=[]
from tqdm import tqdm
for start in tqdm(range(0,len(samples),64)):
    contexts=[DialogueContext.from_sample(s) for s in samples[start:start+64]]
    rankings=p.recommender.top_k_batch(contexts,3)
    ex=g.retrieve([context_key(c.turns,cat.titles) for c in contexts])
    ids=[g.context_ids(render_context(c,cat.titles),e) for c,e in zip(contexts,ex)]
    cands=p.topic_candidates(contexts,[r[:1] for r in rankings])
    with g.decoding_precision():
        gf=np.stack([goal_features(c) for c in contexts])
        goals=g.choose_goals(ids,gf)
        lp=g.goal_log_probs(ids)
        margins=g.topic_margins(ids,goals,[cands(i) for i in range(len(contexts))])
    for i,goal in enumerate(goals):
        c=contexts[i]
        seek=[t.text for t in c.turns if t.role!=RECOMMENDER]
        out.append(dict(goal=goal, goal_lp=np.asarray(lp[i]), names=cands(i), margins=np.asarray(margins[i]) if margins[i] is not None else np.zeros(0),
            features=cands.features(i), gold=list(golds[start+i]), seeker=seek[-1] if seek else "", top=[m for m,_ in rankings[i]], cid=cids[start+i]))
pickle.dump(out, open(f"runs/goal-topic-features/tt_{which}.pkl","wb"))
