"""The tables the compiled engine takes, and the names of their rows.

L = layers (dense blocks), l = 0 .. L-1 (layer l maps layer[N_IN, l] inputs to
layer[N_OUT, l] units; layer L-1 is the output layer), K = models, G = models trained
together by one group (all K, or a chunk of them), k = model index, m = batch rows.
Activations of a group are (m, G n) row-major with model g in columns [g n, (g + 1) n),
so that the first layer of all G models is one product (they share the input batch).

Compiled code takes few arrays: every array an argument adds costs compile time in
every function it passes through (a 45-array record cost 10x a few plain arrays), so
the network's integers, its per-model numbers and the run's scalars are each one array
whose rows are named by the constants below, and functions take small tuples:

    net   = (layer, layer_f, model_f, model_u)        the network, all K models
    state = (params, grads, s1, s2, running)          what training changes
    data  = (X, Y, order, weights, csr)               the examples, the epoch's order,
                                                      the rows' weights ((0,): all 1) and
                                                      a sparse X's (indptr, indices,
                                                      values) (empty: X is dense)
    where = (s, k0, G, l, lo, hi, slot)               which item: step, group, layer,
                                                      a block of columns or rows
"""
# layer: int64 (LAYER_ROWS, L)
(N_IN, N_OUT, ACT, BIAS, BN, DROP,          # widths; activation code; flags
 W_AT, B_AT, GAMMA_AT, BETA_AT,             # offsets in params (K stacked), -1 = none
 MEAN_AT, VAR_AT,                           # offsets in running (K stacked), -1 = none
 ACT_BUF, OUT_BUF, XHAT_BUF, D_BUF, STD_BUF, MU_BUF,   # offsets in a workspace row
 ) = range(18)
LAYER_ROWS = 18

# layer_f: float64 (2, L): BatchNorm's momentum and eps
MOMENTUM, BN_EPS = range(2)

# model_f: float64 (KEEP + L, K): per model; the keep probability of layer l at KEEP + l;
# NOISE: the augmentation's noise scale (fastdnn.rng.noise_scale; 0: no noise)
L2, BETA1, BETA2, OPT_EPS, DECAY, NOISE, KEEP = range(7)

# model_u: uint64 (1 + L, K): the seed (dropout and augmentation keys), then layer l's keep threshold
SEED, THRESHOLD = range(2)

# run: int64 (RUN_FIELDS,) the scalars of one call
(M,            # batch rows (inference: rows per block)
 MODELS,       # G, models per group
 STEPS,        # steps in the run
 ROW_START,    # the run's first position in the epoch's order
 STEP0,        # training steps done before the run (dropout keys)
 UPDATE,       # 1: apply the optimizer and update BatchNorm's running statistics
 STOP_ON_NAN,  # 1: a step whose loss is not finite is not applied, and the run ends
 OUTPUT,       # formulas.OUTPUT_CODES
 OPT_KIND,     # formulas.OPTIMIZER_CODES
 T0,           # updates done before the run (Adam's bias correction)
 EPS_SCALED,   # 1: Adam's eps is eps / sqrt(1 - beta2^t) (scikit-learn's placement)
 X_AT, Y_AT,   # the batch (m, n_0) and its targets (m, n_L) in a workspace row
 WEIGHT_AT,    # the batch's row weights (m,) in a workspace row; -1: every row weighs 1
 IMAGE_H, IMAGE_W, IMAGE_C,   # augmentation: the rows' image shape (IMAGE_H 0: none)
 FLIP, SHIFT,  # augmentation: 1 flips, the largest shift (fastdnn.augment)
 ) = range(19)
RUN_FIELDS = 19

# parts: float64 (3, steps, K, slots): per-step partial sums, one slot per item that
# makes one, merged on the host in slot order (so totals never depend on the threads)
LOSS, CORRECT, SQ = range(3)

# program: int64 (items, PROGRAM_COLUMNS): one training step's work items in phase order
KIND, LAYER, LO, HI, SLOT, PHASE, WAIT = range(7)   # WAIT: the phase's first item
PROGRAM_COLUMNS = 7
