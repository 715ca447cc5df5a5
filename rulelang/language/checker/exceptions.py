"""Rules and their exceptions: what each decides, siblings that could both apply, how
deep exceptions nest, and cycles among definitions, outputs and exceptions."""

from __future__ import annotations

from typing import Optional

from .. import syntax as s
from ..diagnostics import did_you_mean as _suggest
from .dates import overlap
from .model import MAX_DEFINITION_DEPTH, MAX_EXCEPTION_DEPTH, Scope


class Exceptions:
    """Rules and exceptions: what each decides and overrides, and the cycles among them.

    A part of Checker: it shares the checker's state and reports through it."""

    # ------------------------------------------------------------------ rules and exceptions
    def check_rules(self) -> None:
        for label, info in self.rules.items():
            decl = info.decl
            if not decl.is_exception:
                if decl.output not in self.outputs:
                    self.error(f"rule {label} defines unknown output {decl.output}"
                               + _suggest(decl.output, self.outputs), decl.span)
                    continue
                self.outputs[decl.output].roots.append(label)
                info.outputs = (decl.output,)
        for label, info in self.rules.items():
            decl = info.decl
            if decl.is_exception:
                outputs = set()
                for parent in decl.exception_to:
                    if parent not in self.rules:
                        self.error(f"exception {label} is an exception to unknown rule {parent}"
                                   + _suggest(parent, self.rules), decl.span)
                        continue
                    self.rules[parent].exceptions.append(label)
                    outputs.add(self.output_of(parent))
                outputs.discard(None)
                known = sorted(o for o in outputs if o in self.outputs)
                shapes = {(self.outputs[o].decl.table, self.outputs[o].type) for o in known}
                if len(shapes) > 1:
                    self.error(f"exception {label} overrides rules of outputs of different tables or types: "
                               + ", ".join(known), decl.span)
                info.output = known[0] if known and len(shapes) == 1 else None
                info.outputs = tuple(known) if len(shapes) == 1 else ()
        for label, info in self.rules.items():
            if info.output is None or info.output not in self.outputs:
                continue
            output = self.outputs[info.output]
            decl = info.decl
            scope = Scope(output.decl.table)
            self._current = ("output", output.decl.table, output.decl.name)
            if decl.valid_from and decl.valid_until and decl.valid_from > decl.valid_until \
                    and info.repealed_by is None:
                self.error(f"rule {label} ends ({decl.valid_until}) before it starts ({decl.valid_from})", decl.span)
            if decl.condition is not None:
                self.expect_condition(decl.condition, scope, f"the condition of {label}")
            self.expect_value(decl.value, scope, output.type, f"the value of {label}")
            self._current = None
        for output in self.outputs.values():
            self.check_siblings([self.rules[label].decl for label in output.roots])
        for info in self.rules.values():
            self.check_siblings([self.rules[label].decl for label in info.exceptions])

    def output_of(self, label: str) -> Optional[str]:
        """The output a rule defines, following an exception's parents up to a rule."""
        seen, queue = set(), [label]
        while queue:
            current = queue.pop(0)
            if current in seen or current not in self.rules:
                continue
            seen.add(current)
            decl = self.rules[current].decl
            if not decl.is_exception:
                return decl.output
            queue.extend(decl.exception_to)
        return None

    def check_siblings(self, decls: list) -> None:
        """Two rules at one level with the same condition in overlapping periods can never be told apart."""
        for i, a in enumerate(decls):
            for b in decls[i + 1:]:
                if a.condition == b.condition and overlap(a.valid_from, a.valid_until, b.valid_from, b.valid_until):
                    what = "exceptions" if a.is_exception else "rules"
                    self.error(f"{what} {a.label} and {b.label} have identical conditions; "
                               "one of them can never decide alone", b.span,
                               f"{a.label} is at {a.span} ({a.provision.citation})")

    # ------------------------------------------------------------------ cycles
    def depend(self, target: tuple) -> None:
        if self._current is not None:
            self.dependencies.setdefault(self._current, set()).add(target)

    def check_cycles(self) -> None:
        """Definitions and outputs that read each other in a circle, and chains of them longer
        than evaluation follows: walked without recursion, so any rulebook can be checked."""
        graph = {node: sorted(targets, key=str) for node, targets in self.dependencies.items()}
        state: dict[tuple, int] = {}
        depth: dict[tuple, int] = {}
        reported = set()
        for root in sorted(graph, key=str):
            if root in state:
                continue
            state[root], path, stack = 1, [root], [(root, iter(graph.get(root, ())))]
            while stack:
                node, children = stack[-1]
                nxt = next(children, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                    depth[node] = 1 + max((depth.get(c, 0) for c in graph.get(node, ())), default=0)
                elif state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        self.error("definitions depend on each other in a cycle: "
                                   + " → ".join(n[2] for n in cycle), self.span_of(nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(graph.get(nxt, ()))))
        if not reported and depth and max(depth.values()) > MAX_DEFINITION_DEPTH:
            deepest = max(sorted(depth, key=str), key=lambda n: depth[n])
            chain, node = [deepest], deepest
            while graph.get(node):
                node = max(graph[node], key=lambda n: depth.get(n, 0))
                chain.append(node)
            shown = " → ".join(n[2] for n in chain[:3]) + " → … → " + chain[-1][2]
            self.error(f"{deepest[2]} reads a chain of {depth[deepest]} definitions and outputs ({shown}); "
                       f"a chain may be at most {MAX_DEFINITION_DEPTH} long: combine steps", self.span_of(deepest))
        # Exceptions that override one another in a circle never finish. An exception may
        # override several rules, so every parent is followed, not only the first.
        reported = set()
        for label in self.rules:
            cycle = self.exception_cycle(label)
            if cycle is not None and frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                self.error("exceptions override each other in a cycle: " + " → ".join(cycle),
                           self.rules[label].decl.span)
        if not reported:
            self.check_exception_depth()

    def check_exception_depth(self) -> None:
        """Evaluation descends one level per exception; bound how deep exceptions may nest."""
        level: dict[str, int] = {}
        for start in self.rules:
            stack = [start]
            while stack:
                label = stack[-1]
                if label in level:
                    stack.pop()
                    continue
                parents = [p for p in self.rules[label].decl.exception_to if p in self.rules]
                pending = [p for p in parents if p not in level]
                if pending:
                    stack.extend(pending)
                    continue
                stack.pop()
                level[label] = 1 + max((level[p] for p in parents), default=-1)
                if level[label] == MAX_EXCEPTION_DEPTH + 1:
                    self.error(f"exceptions nest deeper than {MAX_EXCEPTION_DEPTH} levels; "
                               "restructure them as separate rules", self.rules[label].decl.span)

    def exception_cycle(self, label: str) -> Optional[list]:
        """A path of `exception … to` links from `label` back to itself, if there is one."""
        came_from = {label: None}
        stack = [label]
        while stack:
            current = stack.pop()
            parents = self.rules[current].decl.exception_to
            if label in parents:
                path = [current]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return path[::-1] + [label]
            for parent in reversed(parents):  # depth first, in the order the parents are named
                if parent in self.rules and parent not in came_from:
                    came_from[parent] = current
                    stack.append(parent)
        return None

    def span_of(self, node: tuple) -> Optional[s.Span]:
        kind, table, name = node
        if kind == "definition":
            return self.definitions[(table, name)].decl.span
        return self.outputs[name].decl.span
