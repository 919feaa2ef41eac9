"""A recurrent cell defined by a genome: a small computation graph.

Jozefowicz, Zaremba & Sutskever ("An Empirical Exploration of Recurrent
Network Architectures", ICML 2015) searched over cells written as graphs whose
nodes are linear maps, elementwise +, - and *, and activations, over the
inputs x_t, h_{t-1} (and c_{t-1} for cells with a memory). `GraphCell`
builds such a graph as an ordinary Keras cell. The graph is a string (the
genome), so it travels through KerasTuner's hyperparameters, which carry only
str, int, float and bool values.

Genome syntax: statements `name=expression` separated by `;`. An expression
is a name or `op(expression, ...)`:

| op | meaning |
|---|---|
| `lin(a, b, ...)` | affine map a W_a + b W_b + ... + bias (one matrix per argument) |
| `lin1(...)`, `lin0.9(...)`, `lin1.1(...)` | the same with the bias starting at 1, 0.9, 1.1 |
| `tanh(a)`, `sigmoid(a)`, `relu(a)` | activations |
| `add(a, b)`, `sub(a, b)`, `mul(a, b)` | elementwise a + b, a - b, a * b |

The paper's mutations draw activations from tanh, sigmoid, ReLU and
Linear(0, x), Linear(1, x), Linear(0.9, x), Linear(1.1, x); the last four are
read here as learned linear maps whose bias starts at 0, 1, 0.9 and 1.1:
`lin`, `lin1`, `lin0.9`, `lin1.1` (the forget gate's `lin1` is Keras's
unit_forget_bias).

The names `x`, `h`, `c` are x_t, h_{t-1} and c_{t-1}; the statements `h_t=...`
(required) and `c_t=...` (when the genome reads `c`) are the new states.
Statements may come in any order; cycles, undefined or unused names, unknown
operations and wrong argument counts are errors. x_t has `input_dim`
features and every other node `units`, so x_t enters only through `lin`.
"""

import re

import keras
from keras import ops

from keras_deeprnn.cells.base import RecurrentCell
from keras_deeprnn.cells.base import slices

INPUTS = ("x", "h", "c")
OUTPUTS = ("h_t", "c_t")
ACTIVATIONS = ("tanh", "sigmoid", "relu")
ELEMENTWISE = ("add", "sub", "mul")
LINEAR_BIASES = {"lin": 0.0, "lin1": 1.0, "lin0.9": 0.9, "lin1.1": 1.1}
OPS = tuple(LINEAR_BIASES) + ACTIVATIONS + ELEMENTWISE

# Keras's LSTM (LSTMCell(variant="np")): the four `lin` nodes are, in order,
# the gates i, f, c (block input) and o, so `kernel`, `recurrent_kernel` and
# `bias` have Keras's column blocks and `set_weights` takes the LSTM's
# weights unchanged. The forget gate's bias starts at 1 (unit_forget_bias).
LSTM_GENOME = (
    "i=sigmoid(lin(x,h));f=sigmoid(lin1(x,h));"
    "c_t=add(mul(f,c),mul(i,tanh(lin(x,h))));"
    "h_t=mul(sigmoid(lin(x,h)),tanh(c_t))"
)

# Keras's GRU (GRUCell, reset_after=True). The `lin` nodes are z, r, the
# candidate's input map and its recurrent map, so `kernel` and
# `recurrent_kernel` have the GRU's blocks z, r, h. The GRU's bias (2, 3
# units) = [input bias; recurrent bias] becomes the four blocks
# [bx_z + bh_z, bx_r + bh_r, bx_h, bh_h]. h_t = n + z (h_{t-1} - n) is the
# GRU's z h_{t-1} + (1 - z) n.
GRU_GENOME = (
    "z=sigmoid(lin(x,h));r=sigmoid(lin(x,h));"
    "n=tanh(add(lin(x),mul(r,lin(h))));"
    "h_t=add(n,mul(z,sub(h,n)))"
)

_TOKEN = re.compile(r"\s*(lin\d+\.\d+|[A-Za-z_]\w*|[=(),;]|\S)")


def _arity_error(op, count):
    if op in LINEAR_BIASES:
        return None if count >= 1 else f"{op}(...) needs at least one argument"
    want = 1 if op in ACTIVATIONS else 2
    if count != want:
        return f"{op}(...) takes {want} argument{'s' * (want > 1)}, got {count}"
    return None


def _tokens(genome):
    tokens, pos = [], 0
    while pos < len(genome):
        match = _TOKEN.match(genome, pos)
        if match is None:  # only trailing whitespace is left
            break
        tokens.append((match.group(1), match.start(1)))
        pos = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens of one genome."""

    def __init__(self, genome):
        self.genome = genome
        self.tokens = _tokens(genome)
        self.pos = 0
        self.nodes = {}  # id -> (op, args), in the order they are read
        self.aliases = {}  # statement name -> name it repeats

    def error(self, message, at=None):
        if at is None:
            at = self.tokens[self.pos][1] if self.pos < len(self.tokens) else len(self.genome)
        raise ValueError(f"Malformed genome: {message} (at character {at} of {self.genome!r}).")

    def peek(self):
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, expected=None):
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            want = f"{expected!r}" if expected else "more text"
            self.error(f"expected {want}, found {token or 'the end'!r}")
        self.pos += 1
        return token

    def name(self):
        token = self.peek()
        if token is None or not re.fullmatch(r"[A-Za-z_]\w*", token):
            self.error(f"expected a name, found {token or 'the end'!r}")
        return self.take()

    def expression(self, statement):
        start = self.tokens[self.pos][1] if self.pos < len(self.tokens) else 0
        token = self.peek()
        if token is not None and re.fullmatch(r"lin\d+\.\d+", token):
            op = self.take()
        else:
            op = self.name()
        if self.peek() != "(":
            return op  # a reference
        if op not in OPS:
            self.error(
                f"unknown operation {op!r} in the statement of {statement!r}; "
                f"operations: {', '.join(OPS)}",
                at=start,
            )
        self.take("(")
        args = [self.expression(statement)]
        while self.peek() == ",":
            self.take(",")
            args.append(self.expression(statement))
        self.take(")")
        problem = _arity_error(op, len(args))
        if problem:
            self.error(f"{problem} in the statement of {statement!r}", at=start)
        if op in LINEAR_BIASES and len(set(args)) < len(args):
            self.error(
                f"{op}(...) repeats an argument in the statement of {statement!r}",
                at=start,
            )
        node = f"#{len(self.nodes)}"
        self.nodes[node] = (op, tuple(args))
        return node

    def parse(self):
        """Read every statement into `nodes` and `aliases`."""
        statements = []
        while self.peek() is not None:
            at = self.tokens[self.pos][1]
            target = self.name()
            if target in INPUTS or target in OPS:
                self.error(f"{target!r} is reserved and cannot be defined", at)
            if target in statements:
                self.error(f"{target!r} is defined twice", at)
            statements.append(target)
            self.take("=")
            value = self.expression(target)
            if value.startswith("#"):
                # The statement names the node its expression built.
                self.nodes[target] = self.nodes.pop(value)
            elif target in OUTPUTS:
                self.aliases[target] = value
            else:
                self.error(
                    f"{target}={value} only repeats {value!r}; only h_t and "
                    "c_t may name another node",
                    at,
                )
            if self.peek() is not None:
                self.take(";")


def _topological(nodes, outputs):
    """Ids reachable from the outputs, dependencies first, ties in node order.

    Raises a ValueError naming the cycle if there is one.
    """
    index = {node: k for k, node in enumerate(nodes)}
    state = {}

    def visit(node, path):
        if node in INPUTS or state.get(node) == "done":
            return
        if node not in nodes:
            user = path[-1] if path and not path[-1].startswith("#") else None
            raise ValueError(
                f"Malformed genome: {repr(user) if user else 'an expression'} "
                f"uses {node!r}, which is not defined (the inputs are x, h "
                "and c)."
            )
        if state.get(node) == "open":
            cycle = path[path.index(node) :] + [node]
            raise ValueError(
                "Malformed genome: cycle "
                + " -> ".join(n for n in cycle if not n.startswith("#"))
                + " (a node may not depend on itself)."
            )
        state[node] = "open"
        for arg in nodes[node][1]:
            visit(arg, path + [node])
        state[node] = "done"

    for out in outputs.values():
        visit(out, [])
    # Emit in node order whenever the dependencies allow it, so a genome
    # written in order keeps its order.
    pending = sorted(state, key=index.get)
    order, emitted = [], set(INPUTS)
    while pending:
        node = next(n for n in pending if set(nodes[n][1]) <= emitted)
        order.append(node)
        emitted.add(node)
        pending.remove(node)
    return order


def check_graph(nodes, outputs, allow_unused=False):
    """Validate a genome graph; return its nodes in execution order.

    Args:
        nodes: dict id -> (op, args); args are ids of nodes or inputs.
        outputs: dict with "h_t" (and "c_t") -> id.
        allow_unused: Accept nodes the outputs do not use (they are left
            out of the order) instead of raising.

    Returns:
        The ids of the nodes the outputs use, dependencies first.

    Raises:
        ValueError: naming the problem (cycle, undefined or unused node,
            unknown operation, wrong argument count, misplaced x, a missing
            or superfluous c_t).
    """
    if "h_t" not in outputs:
        raise ValueError("Malformed genome: it defines no h_t (the new state).")
    for name, node in outputs.items():
        if node not in nodes and node not in INPUTS:
            raise ValueError(f"Malformed genome: {name} names {node!r}, which is not defined.")
        if node in INPUTS:
            raise ValueError(
                f"Malformed genome: {name} = {node} computes nothing; an "
                "output must be an operation."
            )
    order = _topological(nodes, outputs)
    for node in order:
        op, args = nodes[node]
        where = "" if node.startswith("#") else f" in {node!r}"
        if op not in OPS:
            raise ValueError(
                f"Malformed genome: unknown operation {op!r}{where}; operations: {', '.join(OPS)}."
            )
        problem = _arity_error(op, len(args))
        if problem:
            raise ValueError(f"Malformed genome: {problem}{where}.")
        if op in LINEAR_BIASES and len(set(args)) < len(args):
            raise ValueError(f"Malformed genome: {op}(...){where} reads the same node twice.")
        if "x" in args and op not in LINEAR_BIASES:
            raise ValueError(
                f"Malformed genome: {op}(...){where} reads x, but x_t "
                "(input_dim features) can only enter through lin(...); "
                "every other node has `units` features."
            )
    unused = [n for n in nodes if n not in order and not n.startswith("#")]
    if unused and not allow_unused:
        raise ValueError(
            f"Malformed genome: {', '.join(map(repr, unused))} "
            f"{'is' if len(unused) == 1 else 'are'} defined but not used by "
            f"{' or '.join(outputs)}."
        )
    read = {a for n in order for a in nodes[n][1]}
    if "x" not in read:
        raise ValueError("Malformed genome: the outputs never read x.")
    if "c" in read and "c_t" not in outputs:
        raise ValueError("Malformed genome: it reads c (c_{t-1}) but defines no c_t.")
    if "c_t" in outputs and "c" not in read:
        raise ValueError("Malformed genome: it defines c_t but never reads c (c_{t-1}).")
    return order


def parse_genome(genome):
    """Parse and validate a genome string.

    Args:
        genome: The genome, e.g. `GRU_GENOME`.

    Returns:
        `(nodes, outputs)`: `nodes` maps node ids to `(op, args)` in the
        order the genome writes them (an expression after its arguments;
        named nodes keep their names, nested ones get ids `#k`), `outputs`
        maps "h_t" (and "c_t") to node ids.

    Raises:
        ValueError: the genome is malformed; the message says how.
    """
    if not isinstance(genome, str):
        raise ValueError(f"A genome must be a string, got {genome!r}.")
    parser = _Parser(genome)
    parser.parse()
    outputs = {}
    for name in OUTPUTS:
        if name in parser.nodes:
            outputs[name] = name
    for name, target in parser.aliases.items():
        outputs[name] = outputs.get(target, target)
    check_graph(parser.nodes, outputs)
    return parser.nodes, outputs


def format_genome(nodes, outputs):
    """The canonical genome string of a graph (inverse of `parse_genome`).

    Unnamed nodes used once are written inline; named nodes and nodes used
    more than once get a statement (unnamed ones as `v1`, `v2`, ...).
    Nodes the outputs do not use are left out.

    Example:

    >>> format_genome(*parse_genome("h_t = tanh(lin(x, h))"))
    'h_t=tanh(lin(x,h))'
    """
    order = check_graph(nodes, outputs, allow_unused=True)
    uses = {n: 0 for n in order}
    for node in order:
        for arg in nodes[node][1]:
            if arg in uses:
                uses[arg] += 1
    names = {}
    for name in OUTPUTS:
        if name in outputs and outputs[name] not in names:
            names[outputs[name]] = name
    taken = set(order) | set(OUTPUTS)
    counter = 0
    for node in order:
        if node in names or (uses[node] < 2 and node.startswith("#")):
            continue
        if node.startswith("#") or node in OUTPUTS:
            counter += 1
            while f"v{counter}" in taken:
                counter += 1
            names[node] = f"v{counter}"
        else:
            names[node] = node

    def text(node, top=False):
        if node in INPUTS or (node in names and not top):
            return names.get(node, node)
        op, args = nodes[node]
        return f"{op}({','.join(text(a) for a in args)})"

    statements = []
    for node in order:
        if node in names:
            statements.append(f"{names[node]}={text(node, top=True)}")
            for name in OUTPUTS:
                if outputs.get(name) == node and names[node] != name:
                    statements.append(f"{name}={names[node]}")
    return ";".join(statements)


_SYMBOLS = {"x": "x_t", "h": "h_{t-1}", "c": "c_{t-1}"}


def render(genome, use_bias=True):
    """The genome as readable equations, one per line.

    Linear maps are written with the row-vector convention of the library's
    docstrings: the k-th `lin` node (numbered as `GraphCell` orders its
    weights) reads `x_t W_k + h_{t-1} U_k + c_{t-1} V_k + n M_k + b_k`
    (M_k for other nodes n).

    Args:
        genome: The genome string.
        use_bias: Write the biases b_k.

    Example:

    >>> print(render(GRU_GENOME))
    z = sigmoid(x_t W1 + h_{t-1} U1 + b1)
    r = sigmoid(x_t W2 + h_{t-1} U2 + b2)
    n = tanh(x_t W3 + b3 + r * (h_{t-1} U4 + b4))
    h_t = n + z * (h_{t-1} - n)
    """
    nodes, outputs = parse_genome(genome)
    order = check_graph(nodes, outputs)
    linear = [n for n, (op, _) in nodes.items() if op in LINEAR_BIASES]
    named = [n for n in order if not n.startswith("#")]
    notes = []

    def expr(node, parent):
        op, args = nodes[node]
        if op in LINEAR_BIASES:
            k = linear.index(node) + 1
            letters = {"x": "W", "h": "U", "c": "V"}
            others = [a for a in args if a not in letters]
            terms = []
            for a in args:
                if a in letters:
                    matrix = f"{letters[a]}{k}"
                elif len(others) > 1:
                    matrix = f"M{k}.{others.index(a) + 1}"
                else:
                    matrix = f"M{k}"
                terms.append(f"{expr_or_symbol(a, 'matrix')} {matrix}")
            if use_bias:
                terms.append(f"b{k}")
                if LINEAR_BIASES[op]:
                    notes.append(f"b{k} starts at {LINEAR_BIASES[op]:g}")
            out = " + ".join(terms)
            wrap = parent in ("mul", "sub-right", "matrix")
            return f"({out})" if wrap else out
        if op in ACTIVATIONS:
            return f"{op}({expr_or_symbol(args[0], None)})"
        left = expr_or_symbol(args[0], op)
        right = expr_or_symbol(args[1], "sub-right" if op == "sub" else op)
        out = f"{left} {dict(add='+', sub='-', mul='*')[op]} {right}"
        needs = parent in ("mul", "matrix") or (parent == "sub-right" and op != "mul")
        return f"({out})" if needs else out

    def expr_or_symbol(node, parent):
        if node in INPUTS:
            return _SYMBOLS[node]
        return node if node in named else expr(node, parent)

    lines = []
    for node in named:
        lines.append(f"{node} = {expr(node, None)}")
        for name, out in outputs.items():
            if out == node and name != node:
                lines.append(f"{name} = {node}")
    if notes:
        lines.append("(" + "; ".join(notes) + ")")
    return "\n".join(lines)


@keras.saving.register_keras_serializable(package="keras_deeprnn")
class GraphCell(RecurrentCell):
    """A cell computed by a genome's graph (Jozefowicz et al. 2015).

    The genome (see the module docstring for its syntax) is a graph over
    x_t, h_{t-1} and, for memory genomes, c_{t-1}, whose nodes are learned
    linear maps, elementwise +, -, * and activations. `render(genome)` writes
    it as equations; for the GRU genome:

        z = sigmoid(x_t W1 + h_{t-1} U1 + b1)
        r = sigmoid(x_t W2 + h_{t-1} U2 + b2)
        n = tanh(x_t W3 + b3 + r * (h_{t-1} U4 + b4))
        h_t = n + z * (h_{t-1} - n)

    Every `lin` node k has a matrix per argument and a bias b_k. All the
    matrices that read x_t are one input kernel, computed with the biases in
    `project_inputs` (for all time steps at once); all those that read
    h_{t-1} are one recurrent product per step.

    Weights: `kernel` (input_dim, k_x units), `recurrent_kernel` (units,
    k_h units), `bias` (k units,), one column block per `lin` node that reads
    x, h or anything respectively, in the order the genome writes the `lin`
    nodes; `cell_kernel` (units, k_c units) for `lin` terms of c_{t-1} and
    `hidden_kernel` (units, k_n units) for terms of other nodes, when the
    genome has any. With `LSTM_GENOME` and `GRU_GENOME` the blocks are Keras's
    (see their comments), so `GraphCell(LSTM_GENOME, u)` takes the weights of
    `LSTMCell(u, variant="np")` and `keras.layers.LSTMCell(u)` unchanged.

    Args:
        genome: The genome string.
        units: Positive integer, dimensionality of h (and c).
        use_bias, initializers, regularizers, constraints, dropout,
        recurrent_dropout, seed: As in `keras.layers.GRUCell`.
            `kernel_initializer` initialises `kernel`,
            `recurrent_initializer` the other matrices, and a `lin1`,
            `lin0.9` or `lin1.1` node adds 1, 0.9 or 1.1 to its initial bias.
            Recurrent dropout applies to h_{t-1} where a linear map reads it.

    Call arguments:
        inputs: A 2D tensor `(batch, input_dim)`, one time step.
        states: `[h_{t-1}]`, or `[h_{t-1}, c_{t-1}]` for memory genomes.
        training: Whether dropout is active.

    Example:

    >>> cell = GraphCell(LSTM_GENOME, 16)
    >>> y = keras.layers.RNN(cell)(np.zeros((2, 5, 3), "float32"))
    >>> tuple(y.shape), cell.state_size
    ((2, 16), [16, 16])

    Reference: the NumPy equations of
    `tests/test_graph_cell.py::test_arbitrary_genome_matches_numpy_equations`;
    no fused kernel (the hoisted loop of `keras_deeprnn.layers.RNN`).
    """

    def __init__(self, genome, units, **kwargs):
        for name in ("activation", "recurrent_activation"):
            if name in kwargs:
                raise ValueError(
                    f"GraphCell takes no `{name}`: the genome names every "
                    f"activation; got {name}={kwargs[name]!r}."
                )
        super().__init__(units, **kwargs)
        self.nodes, self.outputs = parse_genome(genome)
        self.genome = genome
        self.order = check_graph(self.nodes, self.outputs)
        self.memory = "c_t" in self.outputs
        if self.memory:
            self.state_size = [self.units, self.units]
        self.linear = [n for n, (op, _) in self.nodes.items() if op in LINEAR_BIASES]
        # Column block of each linear term in its kernel, per argument kind.
        self.blocks = {"x": {}, "h": {}, "c": {}, "n": {}}
        for node in self.linear:
            for arg in self.nodes[node][1]:
                kind = arg if arg in INPUTS else "n"
                self.blocks[kind][(node, arg)] = len(self.blocks[kind])
        self.reads_x = [n for n in self.linear if "x" in self.nodes[n][1]]

    def build_weights(self, input_dim):
        u = self.units
        self.kernel = self.add_kernel(len(self.blocks["x"]) * u)
        self.recurrent_kernel = (
            self.add_recurrent_kernel(len(self.blocks["h"]) * u) if self.blocks["h"] else None
        )
        self.bias = self.add_bias((len(self.linear) * u,), initializer=self._bias_initializer)
        self.cell_kernel = (
            self.add_recurrent_kernel(len(self.blocks["c"]) * u, "cell_kernel")
            if self.blocks["c"]
            else None
        )
        self.hidden_kernel = (
            self.add_recurrent_kernel(len(self.blocks["n"]) * u, "hidden_kernel")
            if self.blocks["n"]
            else None
        )

    def _bias_initializer(self, shape, dtype=None):
        return ops.concatenate(
            [
                self.bias_initializer((self.units,), dtype=dtype)
                + LINEAR_BIASES[self.nodes[node][0]]
                for node in self.linear
            ]
        )

    def _bias_block(self, node):
        k = self.linear.index(node)
        return self.bias[k * self.units : (k + 1) * self.units]

    def project_inputs(self, inputs):
        x = ops.matmul(inputs, self.kernel)
        if not self.use_bias:
            return x
        return x + ops.concatenate([self._bias_block(n) for n in self.reads_x])

    def step(self, projected, states, training=False):
        u = self.units
        h_prev = states[0]
        values = {"h": h_prev}
        x_blocks = slices(projected, len(self.blocks["x"]), u)
        h_blocks = c_blocks = None
        if self.recurrent_kernel is not None:
            h_rec = self.recurrent_input(h_prev, training)
            h_blocks = slices(ops.matmul(h_rec, self.recurrent_kernel), len(self.blocks["h"]), u)
        if self.memory:
            values["c"] = states[1]
            if self.cell_kernel is not None:
                c_blocks = slices(
                    ops.matmul(states[1], self.cell_kernel),
                    len(self.blocks["c"]),
                    u,
                )
        for node in self.order:
            op, args = self.nodes[node]
            if op in LINEAR_BIASES:
                values[node] = self._linear(node, args, values, x_blocks, h_blocks, c_blocks)
            elif op in ACTIVATIONS:
                values[node] = keras.activations.get(op)(values[args[0]])
            else:
                a, b = values[args[0]], values[args[1]]
                values[node] = a + b if op == "add" else a - b if op == "sub" else a * b
        h = values[self.outputs["h_t"]]
        if self.memory:
            return h, [h, values[self.outputs["c_t"]]]
        return h, [h]

    def _linear(self, node, args, values, x_blocks, h_blocks, c_blocks):
        u = self.units
        terms = []
        for arg in args:
            if arg == "x":
                terms.append(x_blocks[self.blocks["x"][(node, arg)]])
            elif arg == "h":
                terms.append(h_blocks[self.blocks["h"][(node, arg)]])
            elif arg == "c":
                terms.append(c_blocks[self.blocks["c"][(node, arg)]])
            else:
                k = self.blocks["n"][(node, arg)]
                terms.append(ops.matmul(values[arg], self.hidden_kernel[:, k * u : (k + 1) * u]))
        if self.use_bias and "x" not in args:
            terms.append(self._bias_block(node))
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def get_config(self):
        config = super().get_config()
        del config["activation"], config["recurrent_activation"]
        config["genome"] = self.genome
        return config
