import pickle, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.feature_extraction.text import TfidfVectorizer
from scipy.sparse import hstack, csr_matrix
tr,va=pickle.load(open("runs/goal-topic-features/goal_rows.pkl","rb"))
yt=np.array([r["gold"] for r in tr]); yv=np.array([r["gold"] for r in va])
Ft=np.stack([r["f"] for r in tr]); Fv=np.stack([r["f"] for r in va])
sc=StandardScaler().fit(Ft)
for C in (0.03,0.3):
    m=LogisticRegression(C=C,max_iter=3000).fit(sc.transform(Ft),yt); print("feats",C,(m.predict(sc.transform(Fv))==yv).mean())
for ng in ((1,1),(1,2)):
  vs=TfidfVectorizer(ngram_range=ng,min_df=3,sublinear_tf=True).fit([r["seeker"] for r in tr])
  vr=TfidfVectorizer(ngram_range=ng,min_df=3,sublinear_tf=True).fit([r["rec"] for r in tr])
  Xt=hstack([csr_matrix(sc.transform(Ft)),vs.transform([r["seeker"] for r in tr]),vr.transform([r["rec"] for r in tr])]).tocsr()
  Xv=hstack([csr_matrix(sc.transform(Fv)),vs.transform([r["seeker"] for r in va]),vr.transform([r["rec"] for r in va])]).tocsr()
  for C in (0.1,0.3,1,3):
    m=LogisticRegression(C=C,max_iter=3000).fit(Xt,yt); print("tfidf",ng,C,(m.predict(Xv)==yv).mean())
from sklearn.metrics import confusion_matrix
m=LogisticRegression(C=0.3,max_iter=3000).fit(Xt,yt); pv=m.predict(Xv)
print(confusion_matrix(yv,pv))
import collections
print(collections.Counter(yt.tolist()))
