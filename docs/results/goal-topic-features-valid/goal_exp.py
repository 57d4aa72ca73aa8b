import os
import time, numpy as np, json, pickle
from crs.serve.pipeline import CRS
from crs.config import config_from_dict
from crs.data.splits import load_splits
from crs.data.context import DialogueContext
from crs.data.samples import dialogue_samples
from crs.gen.steps import GOALS, dialogue_examples
from crs.gen.goal_head import goal_features
from crs.data.redial import RECOMMENDER
t=time.time()
p = CRS.from_pretrained("checkpoints/default")
meta = json.load(open("checkpoints/default/config.json"))
config = config_from_dict(meta["crs_config"]); config.data.data_dir=os.environ["CRS_DATA_DIR"]
splits = load_splits(config.data, with_test=False)
print(len(splits.train), len(splits.valid), time.time()-t)
def rows(dialogues):
    out=[]
    for d in dialogues:
        ex = dialogue_examples(d, p.catalogue.titles, p.linker)
        ss = list(dialogue_samples(d))
        assert len(ex)==len(ss)
        for e,s in zip(ex,ss):
            c = DialogueContext.from_sample(s)
            turns=c.turns
            seek=[x.text for x in turns if x.role!=RECOMMENDER]
            mine=[x.text for x in turns if x.role==RECOMMENDER]
            out.append(dict(f=goal_features(c), seeker=seek[-1] if seek else "", rec=mine[-1] if mine else "", gold=GOALS.index(e.steps.goal), cid=e.conversation_id))
    return out
tr=rows(splits.train); va=rows(splits.valid)
print(len(tr), len(va), time.time()-t)
pickle.dump((tr,va), open("runs/goal-topic-features/goal_rows.pkl","wb"))
