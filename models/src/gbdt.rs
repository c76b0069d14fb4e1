//! Gradient-boosted trees: histogram gradient boosting on the binary log-loss, pure Rust,
//! exposed as a linfa model (`Fit` on a weighted `Dataset`, `PredictInplace` to probabilities).
//!
//! Training bins every feature into at most 255 quantile bins, then adds one tree per round.
//! Each tree grows leaf-wise (the leaf whose best split gains most is split first) up to a number
//! of leaves and a depth, from per-bin sums of gradients and hessians. A node's histogram is
//! built from its rows for the smaller child only; the larger child's is the parent's minus it.
//! Histograms are built one feature per task, so both cores work. Class balance comes from
//! sample weights, never from repeating rows. The last rows of the dataset (it is in time
//! order) are held out: training stops when their log-loss has not improved for a number of
//! rounds, and keeps the best round.
//!
//! A fitted model is flat arrays of nodes, so scoring is a few comparisons per tree and no
//! allocation. Every node carries the value its tree would add if it stopped there; a score's
//! reasons follow each tree's path, crediting every split's move from parent to child to the
//! split's feature. The intercept (the base log-odds plus every root's value) plus all the
//! credits is exactly the score's logit.

use linfa::prelude::*;
use linfa::{DatasetBase, ParamGuard};
use ndarray::{Array1, Array2, ArrayBase, Data, Ix2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bounds::within;
use crate::calibration::sigmoid;

/// A node index meaning "no child": the node is a leaf.
const LEAF: u32 = u32::MAX;
/// Most bins a feature is cut into.
pub const MAX_BINS: usize = 255;
/// Values sampled per feature to place the bin edges.
const BIN_SAMPLE: usize = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum GbdtError {
    #[error("invalid gradient boosting parameter: {0}")]
    Parameter(String),
    #[error("cannot fit gradient-boosted trees: {0}")]
    Data(String),
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
}

/// How to boost. `GbdtParams::default()` suits fraud data with a few percent of positives.
#[derive(Debug, Clone, PartialEq)]
pub struct GbdtValidParams {
    pub learning_rate: f64,
    /// Most trees; early stopping usually ends sooner.
    pub max_rounds: usize,
    /// Rounds without improvement on the held-out tail before training stops.
    pub early_stopping_rounds: usize,
    /// Share of the rows, taken from the end, held out for early stopping.
    pub validation_fraction: f64,
    pub max_leaves: usize,
    pub max_depth: usize,
    /// Fewest rows in a leaf.
    pub min_samples_leaf: usize,
    /// Least sum of hessians (weighted p(1-p)) in a leaf.
    pub min_hessian_leaf: f64,
    /// L2 penalty on leaf values.
    pub l2: f64,
    pub max_bins: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GbdtParams(GbdtValidParams);

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams(GbdtValidParams {
            learning_rate: 0.1,
            max_rounds: 500,
            early_stopping_rounds: 30,
            validation_fraction: 0.1,
            max_leaves: 31,
            max_depth: 8,
            min_samples_leaf: 20,
            min_hessian_leaf: 1e-3,
            l2: 1.0,
            max_bins: MAX_BINS,
        })
    }
}

impl GbdtParams {
    pub fn learning_rate(mut self, rate: f64) -> Self {
        self.0.learning_rate = rate;
        self
    }
    pub fn max_rounds(mut self, rounds: usize) -> Self {
        self.0.max_rounds = rounds;
        self
    }
    pub fn early_stopping_rounds(mut self, rounds: usize) -> Self {
        self.0.early_stopping_rounds = rounds;
        self
    }
    pub fn validation_fraction(mut self, fraction: f64) -> Self {
        self.0.validation_fraction = fraction;
        self
    }
    pub fn max_leaves(mut self, leaves: usize) -> Self {
        self.0.max_leaves = leaves;
        self
    }
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.0.max_depth = depth;
        self
    }
    pub fn max_bins(mut self, bins: usize) -> Self {
        self.0.max_bins = bins;
        self
    }
}

impl ParamGuard for GbdtParams {
    type Checked = GbdtValidParams;
    type Error = GbdtError;

    fn check_ref(&self) -> Result<&GbdtValidParams, GbdtError> {
        let p = &self.0;
        let bad = |what: &str| Err(GbdtError::Parameter(what.to_owned()));
        if !(p.learning_rate > 0.0 && p.learning_rate <= 1.0) {
            return bad("learning_rate must be in (0, 1]");
        }
        if p.max_rounds == 0 || p.early_stopping_rounds == 0 {
            return bad("max_rounds and early_stopping_rounds must be at least 1");
        }
        if !(0.0..0.5).contains(&p.validation_fraction) {
            return bad("validation_fraction must be in [0, 0.5)");
        }
        if p.max_leaves < 2 || p.max_depth == 0 {
            return bad("max_leaves must be at least 2 and max_depth at least 1");
        }
        if p.min_samples_leaf == 0
            || p.min_hessian_leaf.is_nan()
            || p.min_hessian_leaf < 0.0
            || p.l2.is_nan()
            || p.l2 < 0.0
        {
            return bad(
                "min_samples_leaf must be at least 1, min_hessian_leaf and l2 not negative",
            );
        }
        if !(2..=MAX_BINS).contains(&p.max_bins) {
            return bad("max_bins must be between 2 and 255");
        }
        Ok(p)
    }

    fn check(self) -> Result<GbdtValidParams, GbdtError> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// Fitted gradient-boosted trees in scoring form. Node `i` of the whole forest splits on
/// `feature[i]` at `threshold[i]` (values at or below go to `left[i]`, others and NaN to
/// `right[i]`) unless `left[i]` is `u32::MAX`; `value[i]` is what its tree adds in log-odds
/// when a row stops there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    /// Log-odds before any tree.
    pub base: f64,
    /// Index of each tree's root node.
    pub roots: Vec<u32>,
    pub feature: Vec<u32>,
    pub threshold: Vec<f64>,
    pub left: Vec<u32>,
    pub right: Vec<u32>,
    pub value: Vec<f64>,
    /// How training went, for the artifact.
    pub rounds: TrainingRounds,
}

/// A fitted forest in the form scoring walks: one 16-byte node per split or leaf, a split's
/// two children side by side, so each step down a tree reads one node rather than five arrays.
/// It gives [`Gbdt::log_odds`]'s sums in the same order, so the same bits.
#[derive(Debug, Clone)]
pub struct PackedForest {
    base: f64,
    roots: Vec<u32>,
    nodes: Vec<PackedNode>,
}

#[derive(Debug, Clone, Copy)]
struct PackedNode {
    /// A split's threshold (values at or below go left; others and NaN right), or a leaf's
    /// value.
    at: f64,
    /// The split's feature, or `LEAF`.
    feature: u32,
    /// A split's left child; the right child is the next node.
    left: u32,
}

impl PackedForest {
    /// The log-odds of `x`.
    pub fn log_odds(&self, x: &[f64]) -> f64 {
        let mut log_odds = self.base;
        for &root in &self.roots {
            let mut node = self.nodes[root as usize];
            while node.feature != LEAF {
                let left = x[node.feature as usize] <= node.at;
                node = self.nodes[node.left as usize + usize::from(!left)];
            }
            log_odds += node.at;
        }
        log_odds
    }
}

/// What early stopping decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRounds {
    pub learning_rate: f64,
    /// Trees kept.
    pub kept: usize,
    /// Trees grown before training stopped.
    pub grown: usize,
    /// Held-out weighted log-loss at the kept round, when rows were held out.
    pub validation_loss: Option<f64>,
}

impl Gbdt {
    /// Log-odds before any feature speaks: the base plus every tree's root value.
    pub fn intercept(&self) -> f64 {
        self.base
            + self
                .roots
                .iter()
                .map(|&r| self.value[r as usize])
                .sum::<f64>()
    }

    /// The log-odds of `x`, adding each split's move to its feature in `contributions`.
    pub fn walk(&self, x: &[f64], contributions: &mut [f64]) -> f64 {
        let mut log_odds = self.base;
        for &root in &self.roots {
            let mut at = root as usize;
            while self.left[at] != LEAF {
                let feature = self.feature[at] as usize;
                let next = if x[feature] <= self.threshold[at] {
                    self.left[at]
                } else {
                    self.right[at]
                } as usize;
                contributions[feature] += self.value[next] - self.value[at];
                at = next;
            }
            log_odds += self.value[at];
        }
        log_odds
    }

    /// The log-odds of `x`.
    pub fn log_odds(&self, x: &[f64]) -> f64 {
        let mut log_odds = self.base;
        for &root in &self.roots {
            let mut at = root as usize;
            while self.left[at] != LEAF {
                at = if x[self.feature[at] as usize] <= self.threshold[at] {
                    self.left[at]
                } else {
                    self.right[at]
                } as usize;
            }
            log_odds += self.value[at];
        }
        log_odds
    }

    pub fn node_count(&self) -> usize {
        self.value.len()
    }

    /// The forest in scoring form ([`PackedForest`]).
    pub fn packed(&self) -> PackedForest {
        let placeholder = PackedNode {
            at: 0.0,
            feature: LEAF,
            left: 0,
        };
        let mut nodes = Vec::with_capacity(self.value.len());
        let mut roots = Vec::with_capacity(self.roots.len());
        let mut queue = std::collections::VecDeque::new();
        for &root in &self.roots {
            roots.push(nodes.len() as u32);
            queue.push_back((root as usize, nodes.len()));
            nodes.push(placeholder);
            // Breadth first, each split's children in the two slots after those taken.
            while let Some((old, slot)) = queue.pop_front() {
                if self.left[old] == LEAF {
                    nodes[slot] = PackedNode {
                        at: self.value[old],
                        ..placeholder
                    };
                    continue;
                }
                let left = nodes.len();
                nodes.extend([placeholder; 2]);
                nodes[slot] = PackedNode {
                    at: self.threshold[old],
                    feature: self.feature[old],
                    left: left as u32,
                };
                queue.push_back((self.left[old] as usize, left));
                queue.push_back((self.right[old] as usize, left + 1));
            }
        }
        PackedForest {
            base: self.base,
            roots,
            nodes,
        }
    }

    /// Why this forest cannot be scored over `width` features, if it cannot: arrays of one
    /// length, at most `max_nodes` nodes, base and node values within `max_log_odds`, finite
    /// thresholds, features in range, and children that come after their parent within the
    /// forest (so every walk ends).
    pub fn check(&self, width: usize, max_nodes: usize, max_log_odds: f64) -> Result<(), String> {
        let n = self.value.len();
        if [
            self.feature.len(),
            self.threshold.len(),
            self.left.len(),
            self.right.len(),
        ]
        .iter()
        .any(|len| *len != n)
        {
            return Err("node arrays differ in length".into());
        }
        if n > max_nodes {
            return Err(format!("{n} nodes, more than the allowed {max_nodes}"));
        }
        if self.roots.is_empty() || n == 0 {
            return Err("no trees".into());
        }
        if !within(self.base, max_log_odds) {
            return Err(format!(
                "base log-odds {:e} is outside ±{max_log_odds}",
                self.base
            ));
        }
        if let Some(r) = self.roots.iter().find(|r| **r as usize >= n) {
            return Err(format!("tree root {r} is not a node"));
        }
        for i in 0..n {
            if !within(self.value[i], max_log_odds) {
                return Err(format!(
                    "node {i} has value {:e}, outside ±{max_log_odds}",
                    self.value[i]
                ));
            }
            if self.left[i] == LEAF {
                continue;
            }
            if self.feature[i] as usize >= width {
                return Err(format!(
                    "node {i} splits on feature {} of {width}",
                    self.feature[i]
                ));
            }
            if !self.threshold[i].is_finite() {
                return Err(format!("node {i} has a threshold that is not finite"));
            }
            for child in [self.left[i], self.right[i]] {
                if child as usize <= i || child as usize >= n {
                    return Err(format!("node {i} has child {child}, not a later node"));
                }
            }
        }
        Ok(())
    }
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<f64>> for Gbdt {
    /// Probabilities of the positive class.
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<f64>) {
        assert_eq!(x.nrows(), y.len(), "one target per row");
        let mut row = vec![0.0; x.ncols()];
        for (i, xi) in x.rows().into_iter().enumerate() {
            row.iter_mut().zip(xi.iter()).for_each(|(r, v)| *r = *v);
            y[i] = sigmoid(self.log_odds(&row));
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<f64> {
        Array1::zeros(x.nrows())
    }
}

impl Fit<Array2<f64>, Array1<bool>, GbdtError> for GbdtValidParams {
    type Object = Gbdt;

    /// Fits on the dataset's rows in time order, weighted by its weights when it has them.
    fn fit(&self, dataset: &DatasetBase<Array2<f64>, Array1<bool>>) -> Result<Gbdt, GbdtError> {
        let x = dataset.records();
        let y = dataset.targets();
        let rows = x.nrows();
        let weights: Vec<f64> = match dataset.weights() {
            Some(w) if w.len() == rows => w.iter().map(|&w| f64::from(w)).collect(),
            _ => vec![1.0; rows],
        };
        if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(GbdtError::Data(
                "sample weights must be finite and not negative".into(),
            ));
        }
        let held_out = (rows as f64 * self.validation_fraction) as usize;
        let train_rows = rows - held_out;
        let labels: Vec<bool> = y.iter().copied().collect();
        let (positive, total) = labels[..train_rows]
            .iter()
            .zip(&weights)
            .fold((0.0, 0.0), |(p, t), (&y, &w)| {
                (p + if y { w } else { 0.0 }, t + w)
            });
        if positive <= 0.0 || positive >= total {
            return Err(GbdtError::Data(
                "the training rows need weight in both classes".into(),
            ));
        }
        let x = x.as_standard_layout();
        let values = x.as_slice().expect("standard layout");
        Ok(
            Booster::new(self, values, x.ncols(), &labels, &weights, train_rows)
                .run((positive / (total - positive)).ln()),
        )
    }
}

/// Per-feature bin edges: a value `v` falls in the first bin whose edge is at or above it, the
/// last bin when above every edge, and NaN in the last bin too (it goes right at every split).
struct Binning {
    edges: Vec<Vec<f64>>,
}

impl Binning {
    fn fit(values: &[f64], width: usize, rows: usize, max_bins: usize) -> Self {
        let step = rows.div_ceil(BIN_SAMPLE).max(1);
        let edges = (0..width)
            .map(|f| {
                let mut sample: Vec<f64> = (0..rows)
                    .step_by(step)
                    .map(|r| values[r * width + f])
                    .filter(|v| !v.is_nan())
                    .collect();
                sample.sort_unstable_by(f64::total_cmp);
                sample.dedup();
                if sample.len() < max_bins {
                    // Every distinct value its own bin: edges between neighbours.
                    sample.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
                } else {
                    let mut edges: Vec<f64> = (1..max_bins)
                        .map(|i| sample[i * sample.len() / max_bins])
                        .collect();
                    edges.dedup();
                    edges
                }
            })
            .collect();
        Binning { edges }
    }

    fn bin(&self, feature: usize, value: f64) -> u8 {
        let edges = &self.edges[feature];
        if value.is_nan() {
            return edges.len() as u8;
        }
        edges.partition_point(|edge| *edge < value) as u8
    }
}

/// Sums of gradients, hessians and rows in one bin.
#[derive(Debug, Clone, Copy, Default)]
struct Bin {
    g: f64,
    h: f64,
    n: u32,
}

impl Bin {
    fn add(&mut self, other: &Bin) {
        self.g += other.g;
        self.h += other.h;
        self.n += other.n;
    }
}

#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    bin: usize,
    gain: f64,
    left: Bin,
}

/// A leaf that may still be split: its rows are `rows[start..end]`.
struct Open {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    total: Bin,
    histogram: Vec<Bin>,
    split: Option<Split>,
}

/// One tree while it grows, in the layout `Gbdt` keeps.
#[derive(Default)]
struct Grown {
    feature: Vec<u32>,
    threshold: Vec<f64>,
    left: Vec<u32>,
    right: Vec<u32>,
    value: Vec<f64>,
}

impl Grown {
    fn push(&mut self, value: f64) -> usize {
        self.feature.push(0);
        self.threshold.push(0.0);
        self.left.push(LEAF);
        self.right.push(LEAF);
        self.value.push(value);
        self.value.len() - 1
    }
}

struct Booster<'a> {
    params: &'a GbdtValidParams,
    values: &'a [f64],
    width: usize,
    labels: &'a [bool],
    weights: &'a [f64],
    train_rows: usize,
    binning: Binning,
    /// Column-major bins of the training rows: `bins[f * train_rows + r]`.
    bins: Vec<u8>,
    bin_count: usize,
}

impl<'a> Booster<'a> {
    fn new(
        params: &'a GbdtValidParams,
        values: &'a [f64],
        width: usize,
        labels: &'a [bool],
        weights: &'a [f64],
        train_rows: usize,
    ) -> Self {
        let binning = Binning::fit(values, width, train_rows, params.max_bins);
        let mut bins = vec![0u8; width * train_rows];
        bins.par_chunks_mut(train_rows.max(1))
            .enumerate()
            .for_each(|(f, column)| {
                for (r, bin) in column.iter_mut().enumerate() {
                    *bin = binning.bin(f, values[r * width + f]);
                }
            });
        Booster {
            params,
            values,
            width,
            labels,
            weights,
            train_rows,
            binning,
            bins,
            bin_count: params.max_bins,
        }
    }

    fn run(self, base: f64) -> Gbdt {
        let p = self.params;
        let rows = self.labels.len();
        let mut log_odds = vec![base; rows];
        let (mut g, mut h) = (vec![0.0; self.train_rows], vec![0.0; self.train_rows]);
        let mut forest = Gbdt {
            base,
            roots: vec![],
            feature: vec![],
            threshold: vec![],
            left: vec![],
            right: vec![],
            value: vec![],
            rounds: TrainingRounds {
                learning_rate: p.learning_rate,
                kept: 0,
                grown: 0,
                validation_loss: None,
            },
        };
        let mut best = (f64::INFINITY, 0usize, 0usize); // loss, trees, nodes
        let mut order: Vec<u32> = (0..self.train_rows as u32).collect();
        for round in 0..p.max_rounds {
            for r in 0..self.train_rows {
                let prob = sigmoid(log_odds[r]);
                let w = self.weights[r];
                g[r] = w * (prob - f64::from(u8::from(self.labels[r])));
                h[r] = (w * prob * (1.0 - prob)).max(1e-16);
            }
            let tree = self.grow(&g, &h, &mut order, &mut log_odds);
            let offset = forest.value.len() as u32;
            let shift = |i: u32| if i == LEAF { LEAF } else { i + offset };
            forest.roots.push(offset);
            forest.feature.extend(&tree.feature);
            forest.threshold.extend(&tree.threshold);
            forest.left.extend(tree.left.iter().map(|&i| shift(i)));
            forest.right.extend(tree.right.iter().map(|&i| shift(i)));
            forest.value.extend(&tree.value);
            forest.rounds.grown = round + 1;
            if self.train_rows == rows {
                continue;
            }
            // The held-out tail: score it with the new tree, then judge the round.
            let tree_root = offset as usize;
            let mut loss = 0.0;
            let mut weight = 0.0;
            for (r, row_log_odds) in log_odds.iter_mut().enumerate().skip(self.train_rows) {
                let x = &self.values[r * self.width..(r + 1) * self.width];
                let mut at = tree_root;
                while forest.left[at] != LEAF {
                    at = if x[forest.feature[at] as usize] <= forest.threshold[at] {
                        forest.left[at]
                    } else {
                        forest.right[at]
                    } as usize;
                }
                *row_log_odds += forest.value[at];
                let prob = sigmoid(*row_log_odds).clamp(1e-15, 1.0 - 1e-15);
                let w = self.weights[r];
                loss -= w * if self.labels[r] {
                    prob.ln()
                } else {
                    (1.0 - prob).ln()
                };
                weight += w;
            }
            let loss = loss / weight.max(f64::MIN_POSITIVE);
            if loss < best.0 {
                best = (loss, forest.roots.len(), forest.value.len());
            } else if forest.roots.len() - best.1 >= p.early_stopping_rounds {
                break;
            }
        }
        if self.train_rows < rows && best.1 > 0 {
            forest.roots.truncate(best.1);
            for array in [&mut forest.left, &mut forest.right, &mut forest.feature] {
                array.truncate(best.2);
            }
            forest.threshold.truncate(best.2);
            forest.value.truncate(best.2);
            forest.rounds.validation_loss = Some(best.0);
        }
        forest.rounds.kept = forest.roots.len();
        forest
    }

    /// Grows one tree on the gradients, adding its leaf values to the training rows' log-odds.
    fn grow(&self, g: &[f64], h: &[f64], order: &mut [u32], log_odds: &mut [f64]) -> Grown {
        let p = self.params;
        let mut tree = Grown::default();
        let mut histogram = vec![Bin::default(); self.width * self.bin_count];
        self.histogram(&order[..], g, h, &mut histogram);
        let total = histogram[..self.bin_count]
            .iter()
            .fold(Bin::default(), |mut t, b| {
                t.add(b);
                t
            });
        let root = tree.push(self.leaf_value(&total));
        let mut open = vec![self.open(root, 0, order.len(), 0, total, histogram)];
        let mut leaves = 1;
        while leaves < p.max_leaves {
            let Some(best) = open
                .iter()
                .enumerate()
                .filter_map(|(i, o)| o.split.map(|s| (i, s.gain)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
            else {
                break;
            };
            let leaf = open.swap_remove(best);
            let split = leaf.split.expect("chosen for its split");
            let column = &self.bins[split.feature * self.train_rows..][..self.train_rows];
            let segment = &mut order[leaf.start..leaf.end];
            let mut cut = 0;
            for i in 0..segment.len() {
                if column[segment[i] as usize] as usize <= split.bin {
                    segment.swap(i, cut);
                    cut += 1;
                }
            }
            let mid = leaf.start + cut;
            let mut right_total = leaf.total;
            right_total.g -= split.left.g;
            right_total.h -= split.left.h;
            right_total.n -= split.left.n;
            let small = if cut <= segment.len() - cut {
                (leaf.start, mid)
            } else {
                (mid, leaf.end)
            };
            let mut small_histogram = vec![Bin::default(); self.width * self.bin_count];
            self.histogram(&order[small.0..small.1], g, h, &mut small_histogram);
            let mut large_histogram = leaf.histogram;
            for (l, s) in large_histogram.iter_mut().zip(&small_histogram) {
                l.g -= s.g;
                l.h -= s.h;
                l.n -= s.n;
            }
            let (left_histogram, right_histogram) = if small.0 == leaf.start {
                (small_histogram, large_histogram)
            } else {
                (large_histogram, small_histogram)
            };
            let left = tree.push(self.leaf_value(&split.left));
            let right = tree.push(self.leaf_value(&right_total));
            tree.feature[leaf.node] = split.feature as u32;
            tree.threshold[leaf.node] = self.threshold(split.feature, split.bin);
            tree.left[leaf.node] = left as u32;
            tree.right[leaf.node] = right as u32;
            let depth = leaf.depth + 1;
            open.push(self.open(left, leaf.start, mid, depth, split.left, left_histogram));
            open.push(self.open(right, mid, leaf.end, depth, right_total, right_histogram));
            leaves += 1;
        }
        // Splitting replaces a leaf by its two children, so every row is in exactly one of the
        // leaves still open.
        for leaf in &open {
            let value = tree.value[leaf.node];
            for &r in &order[leaf.start..leaf.end] {
                log_odds[r as usize] += value;
            }
        }
        tree
    }

    fn open(
        &self,
        node: usize,
        start: usize,
        end: usize,
        depth: usize,
        total: Bin,
        histogram: Vec<Bin>,
    ) -> Open {
        let split = (depth < self.params.max_depth)
            .then(|| self.best_split(&total, &histogram))
            .flatten();
        Open {
            node,
            start,
            end,
            depth,
            total,
            histogram,
            split,
        }
    }

    /// The leaf value for these sums, shrunk by the learning rate.
    fn leaf_value(&self, sums: &Bin) -> f64 {
        -self.params.learning_rate * sums.g / (sums.h + self.params.l2)
    }

    fn score(&self, sums: &Bin) -> f64 {
        sums.g * sums.g / (sums.h + self.params.l2)
    }

    fn best_split(&self, total: &Bin, histogram: &[Bin]) -> Option<Split> {
        let p = self.params;
        let parent = self.score(total);
        let mut best: Option<Split> = None;
        for (feature, bins) in histogram.chunks_exact(self.bin_count).enumerate() {
            let edges = self.binning.edges[feature].len();
            let mut left = Bin::default();
            for (bin, sums) in bins[..edges].iter().enumerate() {
                left.add(sums);
                let right = Bin {
                    g: total.g - left.g,
                    h: total.h - left.h,
                    n: total.n - left.n,
                };
                if (left.n as usize) < p.min_samples_leaf || (right.n as usize) < p.min_samples_leaf
                {
                    continue;
                }
                if left.h < p.min_hessian_leaf || right.h < p.min_hessian_leaf {
                    continue;
                }
                let gain = self.score(&left) + self.score(&right) - parent;
                if gain > 1e-12 && best.is_none_or(|b| gain > b.gain) {
                    best = Some(Split {
                        feature,
                        bin,
                        gain,
                        left,
                    });
                }
            }
        }
        best
    }

    /// The value threshold of "bin at or below `bin`": its upper edge.
    fn threshold(&self, feature: usize, bin: usize) -> f64 {
        self.binning.edges[feature][bin]
    }

    fn histogram(&self, rows: &[u32], g: &[f64], h: &[f64], out: &mut [Bin]) {
        let n = self.train_rows;
        out.par_chunks_mut(self.bin_count)
            .enumerate()
            .for_each(|(f, bins)| {
                bins.fill(Bin::default());
                let column = &self.bins[f * n..(f + 1) * n];
                for &r in rows {
                    let r = r as usize;
                    let bin = &mut bins[column[r] as usize];
                    bin.g += g[r];
                    bin.h += h[r];
                    bin.n += 1;
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows where the label depends on an interaction no single split captures.
    fn interaction(rows: usize) -> DatasetBase<Array2<f64>, Array1<bool>> {
        let mut x = Array2::zeros((rows, 3));
        let mut y = Array1::from_elem(rows, false);
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for r in 0..rows {
            let (a, b, noise) = (next(), next(), next());
            x[[r, 0]] = a;
            x[[r, 1]] = b;
            x[[r, 2]] = noise;
            y[r] = (a > 0.7 && b > 0.5) || (a < 0.1 && b < 0.2);
        }
        Dataset::new(x, y)
    }

    #[test]
    fn learns_an_interaction_and_its_reasons_add_up_to_the_logit() {
        let data = interaction(20_000);
        let model = GbdtParams::default().fit(&data).unwrap();
        assert!(model.rounds.kept > 10 && model.rounds.kept <= model.rounds.grown);
        let probabilities = model.predict(data.records());
        let errors = probabilities
            .iter()
            .zip(data.targets())
            .filter(|(p, y)| (**p > 0.5) != **y)
            .count();
        assert!(errors < 200, "{errors} of 20000 misclassified");
        for row in data.records().rows().into_iter().take(100) {
            let row = row.to_vec();
            let mut contributions = [0.0; 3];
            let logit = model.walk(&row, &mut contributions);
            let sum = model.intercept() + contributions.iter().sum::<f64>();
            assert!((sum - logit).abs() < 1e-9, "{sum} vs {logit}");
            assert!(
                contributions[2].abs() < contributions[0].abs() + contributions[1].abs() + 1e-9
            );
        }
        model.check(3, 1_000_000, 1e3).unwrap();
    }

    #[test]
    fn the_packed_forest_scores_every_row_to_the_bit_nan_included() {
        let data = interaction(5_000);
        let model = GbdtParams::default().fit(&data).unwrap();
        let packed = model.packed();
        assert_eq!(packed.nodes.len(), model.node_count());
        let mut rows: Vec<Vec<f64>> = data
            .records()
            .rows()
            .into_iter()
            .map(|r| r.to_vec())
            .collect();
        rows.extend([
            vec![f64::NAN, 0.6, 0.1],
            vec![0.8, f64::NAN, f64::NAN],
            vec![f64::INFINITY, f64::NEG_INFINITY, 0.0],
        ]);
        for row in &rows {
            let mut contributions = [0.0; 3];
            let walked = model.walk(row, &mut contributions);
            assert_eq!(packed.log_odds(row).to_bits(), walked.to_bits(), "{row:?}");
            assert_eq!(model.log_odds(row).to_bits(), walked.to_bits(), "{row:?}");
        }
    }

    #[test]
    fn weights_move_the_base_rate_without_repeating_rows() {
        let data = interaction(5_000);
        let positives = data.targets().iter().filter(|y| **y).count() as f64;
        let plain = GbdtParams::default().max_rounds(1).fit(&data).unwrap();
        let weights =
            Array1::from_iter(data.targets().iter().map(|&y| if y { 4.0f32 } else { 1.0 }));
        let weighted = GbdtParams::default()
            .max_rounds(1)
            .fit(&data.clone().with_weights(weights))
            .unwrap();
        assert!((plain.base - (positives / (5_000.0 - positives)).ln()).abs() < 0.1);
        assert!(
            (weighted.base - plain.base - 4f64.ln()).abs() < 0.01,
            "a weight of 4 on positives moves the base log-odds by ln 4: {} vs {}",
            weighted.base,
            plain.base
        );
    }

    #[test]
    fn rejects_bad_parameters_and_one_class_data() {
        assert!(GbdtParams::default().learning_rate(0.0).check().is_err());
        assert!(GbdtParams::default().max_bins(300).check().is_err());
        let x = Array2::zeros((50, 2));
        let y = Array1::from_elem(50, false);
        let err = GbdtParams::default().fit(&Dataset::new(x, y)).unwrap_err();
        assert!(err.to_string().contains("both classes"), "{err}");
    }

    #[test]
    fn check_names_what_is_wrong_with_a_forest() {
        let model = GbdtParams::default()
            .max_rounds(3)
            .fit(&interaction(2_000))
            .unwrap();
        let mut loop_back = model.clone();
        let split = loop_back.left.iter().position(|l| *l != LEAF).unwrap();
        loop_back.left[split] = split as u32;
        assert!(loop_back
            .check(3, 10_000, 1e3)
            .unwrap_err()
            .contains("not a later node"));
        let mut wide = model.clone();
        wide.feature[split] = 7;
        assert!(wide
            .check(3, 10_000, 1e3)
            .unwrap_err()
            .contains("feature 7 of 3"));
        for extreme in [f64::INFINITY, f64::NAN, 1e308] {
            let mut pinned = model.clone();
            pinned.value[0] = extreme;
            let err = pinned.check(3, 10_000, 1e3).unwrap_err();
            assert!(err.contains("outside ±1000"), "{err}");
        }
        assert!(model
            .check(3, 2, 1e3)
            .unwrap_err()
            .contains("more than the allowed 2"));
    }
}
