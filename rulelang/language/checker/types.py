"""Types and units: every expression given a type, every name resolved, with a message
naming the place and the fix where it cannot be."""

from __future__ import annotations

from typing import Optional

from .. import syntax as s
from ..diagnostics import did_you_mean as _suggest
from ..typesystem import (
    BOOLEAN,
    DATE,
    INTEGER,
    MONEY,
    NONE,
    PRIMITIVE_TYPES,
    Type,
    UnitError,
    arithmetic,
    assignable,
    comparable,
    unify,
)
from .model import BUILTIN_HELP, BUILTINS, ERROR, EVALUATION_DATE, Scope


class Types:
    """Types and units of expressions: every name resolved, every operator's operands checked.

    A part of Checker: it shares the checker's state and reports through it."""

    def definition_type(self, key: tuple) -> Type:
        info = self.definitions[key]
        if info.typed or info.busy:
            return info.type
        decl = info.decl
        if decl.table is not None and decl.table not in self.tables:
            return ERROR
        info.busy = True
        previous = self._current
        self._current = ("definition", decl.table, decl.name)
        value_type = self.expr(decl.expr, Scope(decl.table))
        self._current = previous
        info.busy = False
        if decl.type_name is not None:
            declared = self.type_named(decl.type_name, decl.span)
            if value_type.kind != "error" and not assignable(value_type, declared):
                self.error(f"definition {decl.name} is declared {declared} but its value is {value_type}",
                           decl.expr.span)
            value_type = declared if declared.kind != "error" else value_type
        self.refuse_unrounded(decl.expr, value_type, f"definition {decl.name}")
        info.type = value_type
        info.typed = True
        return value_type

    def refuse_unrounded(self, expr: s.Expr, value_type: Type, what: str) -> None:
        if value_type.kind == "unrounded":
            self.error(f"{what} is money times a rate and must say how it rounds: "
                       f"add `rounded half up to öre` (or another named mode)", expr.span)

    def expect_value(self, expr: s.Expr, scope: Scope, expected: Type, what: str) -> None:
        actual = self.expr(expr, scope, expected)
        if ERROR in (actual, expected):
            return
        self.refuse_unrounded(expr, actual, what)
        if actual.kind != "unrounded" and not assignable(actual, expected):
            self.error(f"{what} must be {expected}; this is {actual}", expr.span)

    def expect_condition(self, expr: s.Expr, scope: Scope, what: str) -> None:
        actual = self.expr(expr, scope)
        if actual.kind == "error":
            return
        if actual != BOOLEAN:
            self.error(f"{what} must be a boolean; this is {actual}", expr.span)

    # ------------------------------------------------------------------ expressions
    def expr(self, e: s.Expr, scope: Scope, expected: Optional[Type] = None) -> Type:
        """The type of `e`; `expected` lets a bare enum value be read as a value of that enum."""
        if expected is not None and expected.kind == "enum" and isinstance(e, s.Name):
            result = self._enum_in_context(e, scope, expected)
        else:
            result = getattr(self, "_" + type(e).__name__.lower())(e, scope)
        self.types[id(e)] = result
        return result

    def _enum_in_context(self, e: s.Name, scope: Scope, expected: Type) -> Type:
        shadowed = e.name in scope.vars or (
            scope.table in self.tables and (e.name in self.tables[scope.table].fields
                                            or (scope.table, e.name) in self.definitions))
        if not shadowed and e.name in self.enums[expected.name].values:
            self.resolved[id(e)] = ("enum", expected.name, e.name)
            return Type("enum", expected.name)
        return self._name(e, scope)

    def pair(self, left: s.Expr, right: s.Expr, scope: Scope) -> tuple:
        """Type two compared operands, letting an enum on one side decide a bare value on the other."""
        if isinstance(left, s.Name) and left.name in self.enum_values and not isinstance(right, s.Name):
            right_type = self.expr(right, scope)
            return self.expr(left, scope, right_type), right_type
        left_type = self.expr(left, scope)
        return left_type, self.expr(right, scope, left_type)

    def _literal(self, e: s.Literal, scope) -> Type:
        return NONE if e.kind == "none" else PRIMITIVE_TYPES[e.kind]

    def _name(self, e: s.Name, scope: Scope) -> Type:
        name = e.name
        if name in scope.vars:
            self.resolved[id(e)] = ("var", name)
            return Type("row", scope.vars[name])
        table = scope.table
        if table is not None:
            found = self.member_of(table, name, e)
            if found is not None:
                return found
        if (None, name) in self.definitions:
            self.resolved[id(e)] = ("definition", None, name)
            self.depend(("definition", None, name))
            return self.definition_type((None, name))
        if name in self.parameters:
            param = self.parameters[name]
            if param.key_types:
                self.error(f"parameter {name} is keyed by {param.keys_shown}: write {name}[…]", e.span)
                return ERROR
            self.used_parameters.add(name)
            self.resolved[id(e)] = ("parameter", name)
            return param.type
        if name == EVALUATION_DATE:
            self.resolved[id(e)] = ("evaluation_date",)
            return DATE
        if name in self.enum_values:
            owners = self.enum_values[name]
            if len(owners) > 1:
                self.error(f"{name} is a value of several enums ({', '.join(owners)})", e.span)
                return ERROR
            self.resolved[id(e)] = ("enum", owners[0], name)
            return Type("enum", owners[0])
        candidates = [*self.parameters, *self.enum_values, *scope.vars, EVALUATION_DATE]
        candidates += [n for (t, n) in self.definitions if t in (None, table)]
        if table is not None and table in self.tables:
            candidates += [*self.tables[table].fields, *(o for o, i in self.outputs.items() if i.decl.table == table)]
        where = f" in {table}" if table else ""
        self.error(f"unknown name {name}{where}" + _suggest(name, candidates), e.span)
        return ERROR

    def member_of(self, table: str, name: str, node) -> Optional[Type]:
        """A field, definition or output of a table's record, resolved for `node`."""
        info = self.tables.get(table)
        if info is None:
            return ERROR
        if name in info.fields:
            self.resolved[id(node)] = ("field", table, name)
            return info.fields[name][0]
        if (table, name) in self.definitions:
            self.resolved[id(node)] = ("definition", table, name)
            self.depend(("definition", table, name))
            return self.definition_type((table, name))
        output = self.outputs.get(name)
        if output is not None and output.decl.table == table:
            self.resolved[id(node)] = ("output", table, name)
            self.depend(("output", table, name))
            return output.type
        return None

    def _fieldaccess(self, e: s.FieldAccess, scope: Scope) -> Type:
        target = self.expr(e.target, scope)
        if target.kind == "error":
            return ERROR
        if not target.is_record:
            self.error(f"{target} has no fields; .{e.field} needs a record or an id", e.span)
            return ERROR
        found = self.member_of(target.name, e.field, e)
        if found is None:
            info = self.tables[target.name]
            candidates = [*info.fields, *(n for (t, n) in self.definitions if t == target.name),
                          *(o for o, i in self.outputs.items() if i.decl.table == target.name)]
            self.error(f"{target.name} has no field {e.field}" + _suggest(e.field, candidates), e.span)
            return ERROR
        if found.kind == "error":
            return ERROR
        return found.maybe() if target.optional else found

    def _lookup(self, e: s.Lookup, scope: Scope) -> Type:
        if isinstance(e.target, s.Name) and e.target.name not in self.parameters:
            keyed = [name for name, info in self.parameters.items() if info.key_types]
            self.error(f"unknown parameter {e.target.name}" + (_suggest(e.target.name, keyed)
                       or _suggest(e.target.name, self.parameters)), e.target.span,
                       "[…] looks up a row of a parameter declared `by` a key"
                       + (f": {', '.join(sorted(keyed))}" if keyed else "; this rulebook declares none"))
            return ERROR
        if not isinstance(e.target, s.Name):
            self.error("[…] looks up a row of a parameter declared `by` a key", e.span)
            return ERROR
        param = self.parameters[e.target.name]
        self.used_parameters.add(param.decl.name)
        self.resolved[id(e.target)] = ("parameter", param.decl.name)
        if not param.key_types:
            self.error(f"parameter {param.decl.name} has no key; use it without […]", e.span)
            return ERROR
        if len(e.keys) != len(param.key_types):
            self.error(f"parameter {param.decl.name} is keyed by {param.keys_shown}; "
                       f"give {len(param.key_types)} key(s)", e.span)
            return ERROR
        for key_node, key_type in zip(e.keys, param.key_types):
            key = self.expr(key_node, scope, key_type)
            if key.kind != "error" and key_type.kind != "error" and (key.optional or key.required() != key_type):
                self.error(f"parameter {param.decl.name} is keyed by {param.keys_shown}; this key is {key}",
                           key_node.span)
        return param.type

    def _asof(self, e: s.AsOf, scope: Scope) -> Type:
        target = e.target.target if isinstance(e.target, s.Lookup) else e.target
        if not isinstance(target, s.Name) or target.name not in self.parameters:
            self.expr(e.target, scope)  # its own errors (an unknown name, with the closest one)
            if isinstance(target, s.Name) and target.name in self.parameters or \
                    self.types.get(id(e.target), ERROR).kind == "error":
                return ERROR
            self.error("`as of` reads a parameter on another date; this is not a parameter", e.target.span,
                       "write `PARAMETER as of DATE` or `PARAMETER[KEY] as of DATE`")
            return ERROR
        value_type = self.expr(e.target, scope)
        date = self.expr(e.date, scope)
        if date.kind != "error" and date.required() != DATE:
            self.error(f"`as of` takes a date; this is {date}", e.date.span)
        return value_type

    def _historylookup(self, e: s.HistoryLookup, scope: Scope) -> Type:
        target = e.target
        table = self.tables.get(target.name) if isinstance(target, s.Name) else None
        if table is None or table.decl.history is None:
            self.error("[… on …] looks up a history table (one declared `history of`)", e.span)
            return ERROR
        self.resolved[id(target)] = ("table", target.name)
        history = table.decl.history
        key = self.expr(e.key, scope)
        # An optional key (a listing clinic that may be none) finds no row when it is none.
        if key.kind != "error" and (key.kind not in ("ref", "text")
                                    or key.kind == "ref" and key.name != history.of_table):
            self.error(f"{target.name} is a history of {history.of_table}; the key must be a "
                       f"{history.of_table} id, not {key}", e.key.span)
        on = self.expr(e.on, scope)
        if on.kind != "error" and on != DATE:
            self.error(f"the date of a history lookup must be a date; this is {on}", e.on.span)
        return Type("record", target.name, optional=True)

    def _unary(self, e: s.Unary, scope: Scope) -> Type:
        operand = self.expr(e.operand, scope)
        if operand.kind == "error":
            return ERROR
        if e.op == "not":
            if operand != BOOLEAN:
                self.error(f"`not` needs a boolean; this is {operand}", e.operand.span)
                return ERROR
            return BOOLEAN
        if not operand.is_numeric or operand.optional:
            self.error(f"cannot negate {operand}", e.operand.span)
            return ERROR
        return operand

    def _binary(self, e: s.Binary, scope: Scope) -> Type:
        if e.op in ("=", "!="):
            left, right = self.pair(e.left, e.right, scope)
        else:
            left = self.expr(e.left, scope)
            right = self.expr(e.right, scope)
        if ERROR in (left, right):
            return ERROR
        if e.op in ("and", "or"):
            for side, t in ((e.left, left), (e.right, right)):
                if t != BOOLEAN:
                    self.error(f"`{e.op}` needs booleans; this is {t}", side.span)
            return BOOLEAN
        if e.op in ("=", "!=", "<", "<=", ">", ">="):
            ordered = e.op not in ("=", "!=")
            if not comparable(left, right, ordered):
                row, row_side = (left, e.left) if left.kind == "row" else (right, e.right)
                var = row_side.name if isinstance(row_side, s.Name) else "VAR"
                self.error(f"cannot compare {left} with {right}" +
                           (" (an optional value can only be compared with =, or given a fallback with `otherwise`)"
                            if ordered and (left.optional or right.optional) else "") +
                           (f" (a record is not its id: compare its key, `{var}.{self.tables[row.name].decl.key}`)"
                            if {left.kind, right.kind} == {"row", "ref"} and row.name in self.tables
                            and self.tables[row.name].decl.key else ""),
                           e.span, f"left operand at {e.left.span}", f"right operand at {e.right.span}")
            for side, t in ((e.left, left), (e.right, right)):
                self.refuse_unrounded(side, t, "a compared amount")
            return BOOLEAN
        if left.optional or right.optional:
            side = e.left if left.optional else e.right
            self.error(f"this value may be none; give a fallback with `otherwise` before using it in {e.op}",
                       side.span)
            return ERROR
        try:
            return arithmetic(e.op, left, right)
        except UnitError as problem:
            self.error(str(problem), e.span, f"left operand ({left}) at {e.left.span}",
                       f"right operand ({right}) at {e.right.span}")
            return ERROR

    def _isnone(self, e: s.IsNone, scope: Scope) -> Type:
        operand = self.expr(e.operand, scope)
        if operand.kind != "error" and not operand.optional:
            self.error(f"this {operand} is never none", e.operand.span)
        return BOOLEAN

    def _member(self, e: s.Member, scope: Scope) -> Type:
        operand = self.expr(e.operand, scope)
        for item in e.items:
            t = self.expr(item, scope, operand)
            if ERROR not in (operand, t) and not comparable(operand, t, False):
                self.error(f"cannot compare {operand} with {t}", item.span)
        return BOOLEAN

    def _rounded(self, e: s.Rounded, scope: Scope) -> Type:
        operand = self.expr(e.operand, scope)
        if operand.kind == "error":
            return ERROR
        if operand.kind not in ("money", "unrounded") or operand.optional:
            self.error(f"only amounts of money are rounded; this is {operand}", e.operand.span)
            return ERROR
        return MONEY

    def _otherwise(self, e: s.Otherwise, scope: Scope) -> Type:
        operand = self.expr(e.operand, scope)
        fallback = self.expr(e.fallback, scope)
        if ERROR in (operand, fallback):
            return ERROR
        if not operand.optional:
            self.error(f"this {operand} is never none, so `otherwise` never applies", e.operand.span)
        joined = unify(operand.required(), fallback)
        if joined is None:
            self.error(f"the fallback is {fallback} but the value is {operand.required()}", e.fallback.span)
            return ERROR
        return joined

    def _call(self, e: s.Call, scope: Scope) -> Type:
        args = [self.expr(a, scope) for a in e.args]
        if e.function not in BUILTINS:
            self.error(f"unknown function {e.function}" + _suggest(e.function, BUILTINS), e.span)
            return ERROR
        if ERROR in args:
            return ERROR
        params, result = BUILTINS[e.function]
        if params is None:  # min, max
            if len(args) < 2:
                self.error(f"{e.function} takes two or more values", e.span)
                return ERROR
            joined = args[0]
            for arg, node in zip(args[1:], e.args[1:]):
                joined = unify(joined, arg) if joined else None
                if joined is None or not joined.is_numeric and joined.kind != "date" or joined.optional:
                    self.error(f"{e.function} needs values of one kind (amounts, numbers or dates)", node.span)
                    return ERROR
            self.refuse_unrounded(e, joined, f"the {e.function} of amounts")
            return joined
        if len(args) != len(params):
            self.error(f"{e.function} takes {len(params)} value(s); "
                       + BUILTIN_HELP.get(e.function, f"{e.function}({', '.join(str(p) for p in params)})"), e.span)
            return ERROR
        for arg, node, expected in zip(args, e.args, params):
            if arg != expected:
                self.error(f"{e.function} needs {expected} here; this is {arg}", node.span)
                return ERROR
        return result

    def _if(self, e: s.If, scope: Scope) -> Type:
        self.expect_condition(e.condition, scope, "the condition of `if`")
        then = self.expr(e.then, scope)
        otherwise = self.expr(e.otherwise, scope)
        if ERROR in (then, otherwise):
            return ERROR
        joined = unify(then, otherwise)
        if joined is None:
            self.error(f"the branches of `if` differ: {then} and {otherwise}", e.span)
            return ERROR
        return joined

    def _criteria(self, criteria: tuple, scope: Scope) -> None:
        for criterion in criteria:
            self.expect_condition(criterion, scope, "a criterion")

    def _atleast(self, e: s.AtLeast, scope: Scope) -> Type:
        self._criteria(e.criteria, scope)
        if e.threshold > len(e.criteria):
            self.error(f"at least {e.threshold} of {len(e.criteria)} criteria can never hold", e.span)
        return BOOLEAN

    def _counttrue(self, e: s.CountTrue, scope: Scope) -> Type:
        self._criteria(e.criteria, scope)
        return INTEGER

    def _aggregate(self, e: s.Aggregate, scope: Scope) -> Type:
        if e.table not in self.tables:
            self.error(f"unknown table {e.table}" + _suggest(e.table, self.tables), e.span)
            return ERROR
        inner = scope.bind(e.var, e.table)
        if e.where is not None:
            self.expect_condition(e.where, inner, "the `where` of an aggregate")
        if e.function == "count":
            return INTEGER
        value = self.expr(e.expr, inner)
        if value.kind == "error":
            return ERROR
        if not value.is_numeric or value.optional:
            self.error(f"sum of needs amounts or numbers; this is {value}", e.expr.span)
            return ERROR
        self.refuse_unrounded(e.expr, value, "a summed amount")
        return value
