//! Decision trees: linfa-trees fits the splits; Vigil compiles the fitted tree into a flat,
//! serialisable node array that scores with a handful of comparisons and no allocation.
//!
//! linfa-trees predicts a class, not a probability, so compiling routes the (class-weighted)
//! training rows down the tree and gives every node its smoothed log-odds of the positive
//! class. A score is the leaf's probability. Its reasons follow the decision path: each split
//! moves the log-odds from the parent's value to the child's, and that move is credited to the
//! split's feature. The root's log-odds plus every feature's credit is exactly the leaf's
//! log-odds, so the reasons always add up to the score.

use linfa_trees::{DecisionTree, TreeNode};
use serde::{Deserialize, Serialize};

use crate::bounds::within;

/// One node; children always come after their parent in the array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum Node {
    /// Rows whose `feature` is below `threshold` go `left`, the others `right`.
    Split {
        feature: usize,
        threshold: f64,
        left: usize,
        right: usize,
        /// Log-odds of the positive class among the training rows reaching this node.
        log_odds: f64,
    },
    Leaf {
        log_odds: f64,
    },
}

impl Node {
    fn log_odds(&self) -> f64 {
        match self {
            Node::Split { log_odds, .. } | Node::Leaf { log_odds } => *log_odds,
        }
    }
}

/// A fitted tree in scoring form; `nodes[0]` is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledTree {
    pub nodes: Vec<Node>,
}

impl CompiledTree {
    /// Compiles `fitted` with node values from the rows (`x`, row-major, `width` columns) and
    /// their labels and weights.
    pub fn compile(
        fitted: &DecisionTree<f64, bool>,
        x: &[f64],
        width: usize,
        labels: &[bool],
        weights: &[f64],
    ) -> CompiledTree {
        let rows: Vec<usize> = (0..labels.len()).collect();
        let mut nodes = Vec::new();
        let mut compiler = Compiler {
            x,
            width,
            labels,
            weights,
            nodes: &mut nodes,
        };
        compiler.add(fitted.root_node(), &rows);
        CompiledTree { nodes }
    }

    /// The root's log-odds: the score before any split has been taken.
    pub fn base_log_odds(&self) -> f64 {
        self.nodes[0].log_odds()
    }

    /// Walks `z` down the tree, crediting each split's move in log-odds to its feature in
    /// `contributions` (which it adds to); returns the leaf's log-odds.
    pub fn walk(&self, z: &[f64], contributions: &mut [f64]) -> f64 {
        let mut at = 0;
        loop {
            match &self.nodes[at] {
                Node::Leaf { log_odds } => return *log_odds,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                    log_odds,
                } => {
                    let next = if z[*feature] < *threshold {
                        *left
                    } else {
                        *right
                    };
                    contributions[*feature] += self.nodes[next].log_odds() - log_odds;
                    at = next;
                }
            }
        }
    }

    /// Why this tree cannot be scored over `width` features, if it cannot.
    pub fn check(&self, width: usize, max_nodes: usize, max_log_odds: f64) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("tree has no nodes".into());
        }
        if self.nodes.len() > max_nodes {
            return Err(format!(
                "{} nodes, more than the allowed {max_nodes}",
                self.nodes.len()
            ));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if !within(node.log_odds(), max_log_odds) {
                return Err(format!(
                    "node {i} has log-odds {:e}, outside ±{max_log_odds}",
                    node.log_odds()
                ));
            }
            if let Node::Split {
                feature,
                threshold,
                left,
                right,
                ..
            } = node
            {
                if *feature >= width {
                    return Err(format!("node {i} splits on feature {feature} of {width}"));
                }
                if threshold.is_nan() {
                    return Err(format!("node {i} has no threshold"));
                }
                for child in [left, right] {
                    if *child <= i || *child >= self.nodes.len() {
                        return Err(format!("node {i} has child {child}, not a later node"));
                    }
                }
            }
        }
        Ok(())
    }
}

struct Compiler<'a> {
    x: &'a [f64],
    width: usize,
    labels: &'a [bool],
    weights: &'a [f64],
    nodes: &'a mut Vec<Node>,
}

impl Compiler<'_> {
    /// Adds `node` (reached by `rows`) and its subtree in preorder; returns its index.
    fn add(&mut self, node: &TreeNode<f64, bool>, rows: &[usize]) -> usize {
        let index = self.nodes.len();
        let log_odds = self.log_odds(rows);
        let children = node.children();
        let (Some(left), Some(right)) = (children[0].as_deref(), children[1].as_deref()) else {
            self.nodes.push(Node::Leaf { log_odds });
            return index;
        };
        let (feature, threshold, _) = node.split();
        // linfa-trees predicts left when the value is below the threshold; route rows alike.
        let (to_left, to_right): (Vec<usize>, Vec<usize>) = rows
            .iter()
            .partition(|&&r| self.x[r * self.width + feature] < threshold);
        self.nodes.push(Node::Leaf { log_odds });
        let left = self.add(left, &to_left);
        let right = self.add(right, &to_right);
        self.nodes[index] = Node::Split {
            feature,
            threshold,
            left,
            right,
            log_odds,
        };
        index
    }

    /// Smoothed weighted log-odds of the positive class among `rows`.
    fn log_odds(&self, rows: &[usize]) -> f64 {
        let (mut positive, mut negative) = (0.0, 0.0);
        for &r in rows {
            if self.labels[r] {
                positive += self.weights[r];
            } else {
                negative += self.weights[r];
            }
        }
        ((positive + 1.0) / (negative + 1.0)).ln()
    }
}
