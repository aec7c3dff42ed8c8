# umap-learn 0.5.3: transform with n_epochs=3 (1 transform epoch, in which no edge is due) returns
# init_graph_transform's start: the weighted mean of the 30 nearest reference cells' positions.
import os
SHARED = os.environ.get("SX_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared"))
import h5py, numpy as np, umap, warnings
warnings.filterwarnings("ignore")
for name in ["pbmc_3tech", "cellbench_3cl", "pancreas_baron_human_mouse"]:
    f = h5py.File(f"{SHARED}/golden/embed/{name}/embed.h5", "r")
    X = f["latent"][:].astype(np.float32)
    E = f["umap/X_umap"][:].astype(np.float32)
    ri = f["label_transfer/ref_index"][:]; qi = f["label_transfer/query_index"][:]
    m = umap.UMAP(n_neighbors=30, min_dist=0.1, n_epochs=3, random_state=0).fit(X[ri])
    m.embedding_ = E[ri].copy()
    t = m.transform(X[qi[:4]])
    print(name, ", ".join(f"{v:.6f}" for v in t.ravel()))
