# torch_scalex.py — a PyTorch 1.13 re-statement of SCALEX v1.0.0's training (net/layer.py,
# vae.py fit, EarlyStopping, the load_data loaders) on golden prep's scaled matrix: the
# evidence behind docs/tutorials/quality.md's "Is the gap systematic?" (SCALEX's own seed
# spread). Investigation only: never part of the product or of CI. Needs Debian's
# python3-torch installed by hand (apt-get install python3-torch), run with /usr/bin/python3:
#   /usr/bin/python3 bench/torch_scalex.py ../shared/golden/prep/pbmc_3tech/scaled_literal.h5 SEED 3000 out.npz
# writes the latent (obsm latent as SCALEX computes it: training-mode BN over domain-pure
# chunks), the epoch losses and where it stopped.
import sys, json, numpy as np, h5py, torch, torch.nn as nn, torch.nn.functional as F
from torch.distributions import Normal, kl_divergence
from torch.utils.data import Dataset, DataLoader
torch.set_num_threads(1)
prep, seed, max_it = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = sys.argv[4]
np.random.seed(seed); torch.manual_seed(seed)
f = h5py.File(prep)
import scipy.sparse as sp
X = sp.csr_matrix((f['X/data'][:], f['X/indices'][:], f['X/indptr'][:]), shape=(len(f['X/indptr'])-1, len(f['var_names'])))
dom = f['batch_codes'][:].astype(np.int8)
names = [s.decode() for s in f['obs_names'][:]]
N, G = X.shape; D = int(dom.max()) + 1
XD = X.toarray()
class DS(Dataset):
    def __len__(s): return N
    def __getitem__(s, i): return XD[i], dom[i], i
class BS:  # scalex.data.BatchSampler
    def __init__(s, bs, b, drop_last=False): s.bs, s.b, s.dl = bs, b, drop_last
    def __iter__(s):
        batch = {}; sampler = np.random.permutation(len(s.b))
        for idx in sampler:
            c = s.b[idx]
            batch.setdefault(c, []).append(idx)
            if len(batch[c]) == s.bs:
                yield batch[c]; batch[c] = []
        for c in batch:
            if len(batch[c]) > 0 and not s.dl: yield batch[c]
    def __len__(s): return (len(s.b) + s.bs - 1) // s.bs
ds = DS()
train = DataLoader(ds, batch_size=64, drop_last=True, shuffle=True, num_workers=0)
test = DataLoader(ds, batch_sampler=BS(64, dom))
class DSBN(nn.Module):
    def __init__(s, nf, nd):
        super().__init__(); s.nd, s.nf = nd, nf
        s.bns = nn.ModuleList([nn.BatchNorm1d(nf) for _ in range(nd)])
    def forward(s, x, y):
        o = torch.zeros(x.size(0), s.nf)
        for i in range(s.nd):
            ind = np.where(y.cpu().numpy() == i)[0]
            if len(ind) > 1: o[ind] = s.bns[i](x[ind])
            elif len(ind) == 1: o[ind] = x[ind]
        return o
class Block(nn.Module):
    def __init__(s, i, o, norm='', act=''):
        super().__init__(); s.fc = nn.Linear(i, o)
        s.norm = (nn.BatchNorm1d(o) if norm == 1 else DSBN(o, norm)) if type(norm) == int else None
        s.act = {'relu': nn.ReLU(), 'sigmoid': nn.Sigmoid(), '': None}[act]
    def forward(s, x, y=None):
        h = s.fc(x)
        if s.norm:
            if len(x) == 1: pass
            elif isinstance(s.norm, DSBN): h = s.norm(h, y)
            else: h = s.norm(h)
        if s.act: h = s.act(h)
        return h
class Enc(nn.Module):
    def __init__(s, G):
        super().__init__(); s.enc = Block(G, 1024, 1, 'relu'); s.mu = Block(1024, 10); s.var = Block(1024, 10)
    def forward(s, x):
        q = s.enc(x); mu = s.mu(q); var = torch.exp(s.var(q))
        return Normal(mu, var.sqrt()).rsample(), mu, var
class VAE(nn.Module):
    def __init__(s):
        super().__init__(); s.encoder = Enc(G); s.decoder = Block(10, G, D, 'sigmoid')
m = VAE()
def kl_div(mu, var):
    return kl_divergence(Normal(mu, var.sqrt()), Normal(torch.zeros_like(mu), torch.ones_like(var))).sum(dim=1).mean()
optim = torch.optim.Adam(m.parameters(), lr=2e-4, weight_decay=5e-4)
n_epoch = int(np.ceil(max_it / len(train)))
best, counter, best_sd, losses, stopped = None, 0, None, [], False
for ep in range(n_epoch):
    el = {'r': 0.0, 'k': 0.0}
    for i, (x, y, idx) in enumerate(train):
        x, y = x.float(), y.long()
        z, mu, var = m.encoder(x)
        rx = m.decoder(z, y)
        r = F.binary_cross_entropy(rx, x) * x.size(-1); k = 0.5 * kl_div(mu, var)
        optim.zero_grad(); (r + k).backward(); optim.step()
        el['r'] += r.item(); el['k'] += k.item()
    E = el['r'] / (i + 1) + el['k'] / (i + 1); losses.append((el['r'] / (i + 1), el['k'] / (i + 1)))
    score = -E
    if best is None or not (score < best):
        best = score; counter = 0; best_sd = {kk: v.clone() for kk, v in m.state_dict().items()}
    else:
        counter += 1
        if counter >= 10:
            m.load_state_dict(best_sd); stopped = True; break
m.train()
lat = np.zeros((N, 10))
with torch.no_grad():
    for x, y, idx in test:
        lat[idx] = m.encoder(x.float())[1].numpy()
np.savez(out, latent=lat, batch=dom, names=np.array(names), losses=np.array(losses), stopped=stopped, epochs=len(losses))
print("seed", seed, "epochs", len(losses), "stopped", stopped, "final", losses[-1])
