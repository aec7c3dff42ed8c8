# umap-learn 0.5.3 (Debian) on the golden latents: transform vs joint, joint vs joint,
# transform onto the joint map (ref cells only) and transform of training cells.
import os
SHARED = os.environ.get("SX_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
import sys, h5py, numpy as np, umap, warnings
from sklearn.neighbors import NearestNeighbors
warnings.filterwarnings("ignore")
K = 15
def nn2d(refpos, qpos):
    return NearestNeighbors(n_neighbors=K).fit(refpos).kneighbors(qpos, return_distance=False)
def agree(a, b):
    return np.mean([len(set(x) & set(y)) / K for x, y in zip(a, b)])
def mk(seed):
    return umap.UMAP(n_neighbors=30, min_dist=0.1, random_state=seed)
for name in sys.argv[1:]:
    f = h5py.File(f"{SHARED}/golden/embed/{name}/embed.h5", "r")
    X = f["latent"][:].astype(np.float32)
    ri = f["label_transfer/ref_index"][:]; qi = f["label_transfer/query_index"][:]
    R, Q = X[ri], X[qi]
    lat = NearestNeighbors(n_neighbors=K).fit(R).kneighbors(Q, return_distance=False)
    seeds = [0, 1, 2]
    joints = [mk(s).fit(X).embedding_ for s in seeds]
    jnn = [nn2d(e[ri], e[qi]) for e in joints]
    jj = [agree(jnn[a], jnn[b]) for a in range(3) for b in range(a + 1, 3)]
    tj = []; tl = []
    for s in seeds:
        m = mk(s).fit(R)
        t = m.transform(Q)
        tn = nn2d(m.embedding_, t)
        tj += [agree(tn, jnn[b]) for b in range(3)]
        tl.append(agree(tn, lat))
    # onto the joint map: reference = ref cells at their joint positions
    onto = []; self_ = []
    for s in seeds:
        m = mk(s).fit(R)
        m.embedding_ = joints[s][ri].astype(np.float32)
        t = m.transform(Q)
        onto.append(agree(nn2d(joints[s][ri], t), jnn[s]))
        mj = mk(s).fit(X)
        t2 = mj.transform(Q)
        self_.append(agree(nn2d(mj.embedding_[ri], t2), nn2d(mj.embedding_[ri], mj.embedding_[qi])))
    jl = [agree(j, lat) for j in jnn]
    print(f"[{name}] umap-learn {umap.__version__ if hasattr(umap,'__version__') else ''}: transform vs joint "
          f"{np.mean(tj):.3f} [{min(tj):.3f}-{max(tj):.3f}]; joint vs joint {np.mean(jj):.3f} "
          f"[{min(jj):.3f}-{max(jj):.3f}]; onto joint map (ref cells) vs fitted {np.mean(onto):.3f} "
          f"[{min(onto):.3f}-{max(onto):.3f}]; transform of training cells vs fitted {np.mean(self_):.3f}; "
          f"vs latent: transform {np.mean(tl):.3f} joint {np.mean(jl):.3f}", flush=True)
