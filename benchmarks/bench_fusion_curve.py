"""Albedo error against the number of photos: k = 1..6 relit copies of a known albedo.

Six renders of the test recipe (tests/synthetic.py: a known UV albedo on the fitted mesh
of samples/grace_hopper.jpg, each under its own SH light with a specular lobe and 2% noise),
reconstructed alone and in cyclic groups of k. Prints MAE (linear albedo, whole face less
the outline band) with and without one global gain per channel (the prior ambiguity).

Usage: python benchmarks/bench_fusion_curve.py
"""
from pathlib import Path
import sys; sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np, tempfile
from pathlib import Path
from tests.synthetic import known_albedo, render_known_face, write_case
from hifialbedo.io.images import read_photo
from hifialbedo.mesh.topology import uv_regions
from hifialbedo.ops.sh import directional_light
from hifialbedo.pipeline import Models, ReconstructConfig, reconstruct_photos
from hifialbedo.render.uv_layout import uv_layout
m=Models(); p=read_photo(Path(__file__).resolve().parents[1] / "samples/grace_hopper.jpg"); lm=m.detector.detect(p.pixels).landmarks
UV=256; truth=known_albedo(UV); lay=uv_layout(UV)
tmp=Path(tempfile.mkdtemp())
face = lay.gather(uv_regions(UV)["face"]) & (lay.border_weight > 0.99)
at=lay.gather(truth)[face]
def errs(alb):
    a=alb[face]; g=np.median(at,0)/np.median(a,0)
    return float(np.mean(np.abs(a*g-at))), float(np.mean(np.abs(a-at)))
lights=[(directional_light([0.6,0.2,0.8],0.9,0.4),(0.5,0.3,0.8)),(directional_light([-0.6,0.3,0.7],0.8,0.5),(-0.5,0.3,0.8)),
 (directional_light([0.0,0.7,0.7],[1.0,0.85,0.7],0.4),(0.0,0.6,0.8)),(directional_light([0.2,-0.5,0.8],0.7,0.6),(0.2,-0.4,0.9)),
 (directional_light([0.8,0.0,0.6],1.0,0.3),(0.6,0.0,0.8)),(directional_light([-0.3,-0.2,0.9],0.6,0.7),(-0.3,-0.2,0.9))]
ps=[];ls=[]
for i,(sh,spec) in enumerate(lights):
    ph,l=write_case(tmp,f"c{i}",render_known_face(p.pixels,lm,truth,sh,highlight=spec,noise=0.02,seed=i),lm); ps.append(ph); ls.append(l)
cfg=ReconstructConfig(uv_size=UV,check_identity=False)
single=[errs(lay.gather(reconstruct_photos([a],config=cfg,landmark_files=[b],models=m).albedo)) for a,b in zip(ps,ls)]
print("single (gain-corrected MAE, absolute MAE):", [tuple(round(x,4) for x in s) for s in single])
for k in range(1,7):
    # average over the cyclic subsets of size k
    vals=[errs(lay.gather(reconstruct_photos([ps[(s+j)%6] for j in range(k)],config=cfg,landmark_files=[ls[(s+j)%6] for j in range(k)],models=m).albedo)) for s in range(6)]
    print(k, "mean gain-corrected MAE %.4f, mean absolute MAE %.4f"%(np.mean([v[0] for v in vals]), np.mean([v[1] for v in vals])))
