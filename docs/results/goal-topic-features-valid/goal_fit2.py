import pickle, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.feature_extraction.text import TfidfVectorizer
from scipy.sparse import hstack, csr_matrix
tr,va=pickle.load(open("runs/goal-topic-features/goal_rows.pkl","rb"))
ttr=pickle.load(open("runs/goal-topic-features/tt_train.pkl","rb")); tva=pickle.load(open("runs/goal-topic-features/tt_valid.pkl","rb"))
n=len(ttr); tr=tr[:n]
assert all(a["cid"]==b["cid"] for a,b in zip(tr,ttr))
yt=np.array([r["gold"] for r in tr]); yv=np.array([r["gold"] for r in va])
Ft=np.hstack([np.stack([r["goal_lp"] for r in ttr]),np.stack([r["f"] for r in tr])]); Fv=np.hstack([np.stack([r["goal_lp"] for r in tva]),np.stack([r["f"] for r in va])])
sc=StandardScaler().fit(Ft)
for C in (0.01,0.03,0.1):
    m=LogisticRegression(C=C,max_iter=3000).fit(sc.transform(Ft),yt); print("lp+feats",n,C,(m.predict(sc.transform(Fv))==yv).mean())
for mf in (2000,5000,None):
  vs=TfidfVectorizer(ngram_range=(1,2),min_df=3,sublinear_tf=True,max_features=mf).fit([r["seeker"] for r in tr])
  vr=TfidfVectorizer(ngram_range=(1,2),min_df=3,sublinear_tf=True,max_features=mf).fit([r["rec"] for r in tr])
  Xt=hstack([csr_matrix(sc.transform(Ft)),vs.transform([r["seeker"] for r in tr]),vr.transform([r["rec"] for r in tr])]).tocsr()
  Xv=hstack([csr_matrix(sc.transform(Fv)),vs.transform([r["seeker"] for r in va]),vr.transform([r["rec"] for r in va])]).tocsr()
  for C in (0.1,0.3,1):
    m=LogisticRegression(C=C,max_iter=3000).fit(Xt,yt); print("lp+feats+tfidf",mf,C,(m.predict(Xv)==yv).mean())
