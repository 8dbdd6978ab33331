"""The built-in MTL methods, one module each; importing one registers it (mtljax/mtl/base.py).

The list below is the registry's order: the order of the docs' tables and the benchmark's cells.
"""

from mtljax.mtl.methods import (equal, static, uw, dwa, rlw, gradnorm, pcgrad, mgda, mgda_ub, cagrad,  # noqa: F401
                                imtl_g, nash_mtl, aligned_mtl, upgrad, gls, graddrop, gradvac, imtl, moco,
                                db_mtl, stch, excessmtl, fairgrad, famo, modo, sdmgrad, dualproj, config,
                                tchebycheff, pbi, epo, pmtl, pmgda, cosmos, pcd, cr_mogm, krum, trimmed_mean,
                                conicgrad, auto_lambda, moml, forum)
