import pickle, numpy as np, collections, re, sys
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.feature_extraction.text import TfidfVectorizer

from crs.gen.topic_head import head_inputs
from crs.eval.conv import topic_f1
tr=pickle.load(open("runs/goal-topic-features/tt_train.pkl","rb")); va=pickle.load(open("runs/goal-topic-features/tt_valid.pkl","rb"))
print(len(tr),len(va))
facts=None
def base_rows(T):
    return [head_inputs(t["margins"],t["features"],t["goal"]) for t in T]
# out-of-fold entity prior
def folds(T,k=5):
    cids=sorted(set(t["cid"] for t in T)); f={c:i%k for i,c in enumerate(cids)}; return np.array([f[t["cid"]] for t in T])
def prior_table(T):
    n=collections.Counter(); s=collections.Counter()
    for t in T:
        for nm in t["names"]: n[nm]+=1; s[nm]+= nm in t["gold"]
    return n,s
def prior_feats(T, table, glob, a=10):
    n,s=table
    return [np.array([[np.log((s[nm]+a*glob)/(n[nm]+a))] for nm in t["names"]]).reshape(-1,1) for t in T]
ytr=[np.array([nm in t["gold"] for nm in t["names"]]) for t in tr]
glob=np.concatenate(ytr).mean()
fo=folds(tr)
ptr=[None]*len(tr)
for k in range(5):
    tab=prior_table([t for t,f in zip(tr,fo) if f!=k])
    idx=[i for i,f in enumerate(fo) if f==k]
    pf=prior_feats([tr[i] for i in idx],tab,glob)
    for i,x in zip(idx,pf): ptr[i]=x
pva=prior_feats(va,prior_table(tr),glob)
# turn-level "names any topic" text model, out of fold
vec=TfidfVectorizer(ngram_range=(1,2),min_df=3,sublinear_tf=True).fit([t["seeker"] for t in tr])
Xs=vec.transform([t["seeker"] for t in tr]); ys=np.array([bool(t["gold"]) for t in tr])
ttr=np.zeros(len(tr))
for k in range(5):
    m=LogisticRegression(C=1,max_iter=3000).fit(Xs[fo!=k],ys[fo!=k]); ttr[fo==k]=m.predict_proba(Xs[fo==k])[:,1]
m=LogisticRegression(C=1,max_iter=3000).fit(Xs,ys); tva=m.predict_proba(vec.transform([t["seeker"] for t in va]))[:,1]
def lpf(T): return [np.repeat(np.asarray(t["goal_lp"])[None,:],len(t["names"]),0) for t in T]
def build(T,prior,turnp,use):
    rows=base_rows(T); out=[]
    for i,t in enumerate(T):
        parts=[rows[i]]
        n=len(t["names"])
        if "prior" in use: parts.append(prior[i])
        if "text" in use: parts.append(np.full((n,1),np.log(turnp[i]/(1-turnp[i]))))
        if "lp" in use: parts.append(np.repeat(np.asarray(t["goal_lp"],dtype=float)[None,:],n,0))
        out.append(np.hstack(parts) if n else None)
    return out
def evaluate(use, multi=False):
    Xt=build(tr,ptr,ttr,use); Xv=build(va,pva,tva,use)
    x=np.vstack([a for a in Xt if a is not None]); y=np.concatenate([a for a,b in zip(ytr,Xt) if b is not None])
    sc=StandardScaler().fit(x); best=(0,)
    for C in (0.01,0.1,1.0):
        m=LogisticRegression(C=C,max_iter=5000).fit(sc.transform(x),y)
        P=[m.predict_proba(sc.transform(a))[:,1] if a is not None else None for a in Xv]
        for th in np.arange(0.05,0.7,0.025):
            ch=[[t["names"][int(p.argmax())]] if p is not None and p.max()>=th else [] for t,p in zip(va,P)]
            if multi:
                ch=[[t["names"][j] for j in np.argsort(-p)[:2] if p[j]>=th] if p is not None else [] for t,p in zip(va,P)]
            f=topic_f1(ch,[t["gold"] for t in va])
            if f>best[0]: best=(f,C,round(th,3),sum(bool(c) for c in ch))
    print(use,multi,best)
evaluate(())
evaluate(("prior",))
evaluate(("text",))
evaluate(("lp",))
evaluate(("prior","text","lp"))
evaluate(("prior","text","lp"),True)
