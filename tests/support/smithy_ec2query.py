#!/usr/bin/env python3
"""smithy_ec2query.py - the Smithy ec2Query protocol tests as JSON.

Reads the Smithy IDL 2.0 files of tests/data/ec2query/ (the protocol
compliance tests of smithy-lang/smithy) and writes one JSON document for
tests/unit/test_aws_ec2query.c:

  {"service_version": "2020-01-08",
   "shapes": {name: {"type", "members"?: {m: {"target", "traits"}},
                     "member"?: {...}, "key"?, "value"?, "traits"}},
   "operations": {name: {"input"?, "output"?}},
   "cases": [{"id", "kind": "request" | "response", "shape", "file",
              "error": bool, ...the case's own fields}]}

Shape and trait names lose their namespace (StringList, ec2QueryName):
the files define each name once. Only the part of the IDL these files use
is understood (no mixins, no inline operation input); anything else fails
loudly rather than being skipped.

Usage: smithy_ec2query.py OUT.json FILE.smithy...
"""
import json
import re
import sys

TOKEN = re.compile(r'''
    (?P<ws>[\s,]+)
  | (?P<comment>//[^\n]*)
  | (?P<text>""")
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<walrus>:=)
  | (?P<punct>[{}\[\]():=@])
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_.#$]*)
''', re.VERBOSE | re.DOTALL)

ESCAPES = {'n': '\n', 't': '\t', 'r': '\r', 'b': '\b', 'f': '\f', '"': '"',
           '\\': '\\', '/': '/', "'": "'"}


def unescape(s):
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c != '\\':
            out.append(c)
            i += 1
            continue
        n = s[i + 1]
        if n == '\n':  # line continuation
            i += 2
        elif n == 'u':
            out.append(chr(int(s[i + 2:i + 6], 16)))
            i += 6
        else:
            out.append(ESCAPES[n])
            i += 2
    return ''.join(out)


def text_block(raw):
    """A Smithy text block: drop the first newline, the common indentation
    (the closing delimiter's line counts) and trailing spaces."""
    if not raw.startswith('\n'):
        raise SyntaxError('text block must start with a new line')
    lines = raw[1:].split('\n')
    indents = [len(l) - len(l.lstrip(' ')) for l in lines[:-1] if l.strip()]
    indents.append(len(lines[-1]) - len(lines[-1].lstrip(' ')))
    cut = min(indents)
    lines = [l[cut:].rstrip(' ') for l in lines]
    return unescape('\n'.join(lines))


def tokenize(src):
    toks, pos = [], 0
    while pos < len(src):
        m = TOKEN.match(src, pos)
        if not m:
            raise SyntaxError('cannot read %r' % src[pos:pos + 30])
        kind = m.lastgroup
        if kind == 'text':
            end = src.index('"""', m.end())
            toks.append(('string', text_block(src[m.end():end])))
            pos = end + 3
            continue
        pos = m.end()
        if kind in ('ws', 'comment'):
            continue
        val = m.group(kind)
        if kind == 'string':
            val = unescape(val[1:-1])
        toks.append((kind, val))
    return toks


class Parser:
    def __init__(self, toks, name, out):
        self.t, self.i, self.file, self.out = toks, 0, name, out

    def peek(self, k=0):
        return self.t[self.i + k] if self.i + k < len(self.t) else (None, None)

    def next(self):
        tok = self.t[self.i]
        self.i += 1
        return tok

    def expect(self, val):
        kind, v = self.next()
        if v != val:
            raise SyntaxError('%s: want %r, got %r' % (self.file, val, v))

    def value(self):
        kind, v = self.next()
        if v == '{' and kind == 'punct':
            obj = {}
            while self.peek()[1] != '}':
                _, key = self.next()
                self.expect(':')
                obj[key] = self.value()
            self.next()
            return obj
        if v == '[' and kind == 'punct':
            arr = []
            while self.peek()[1] != ']':
                arr.append(self.value())
            self.next()
            return arr
        if kind == 'number':
            return float(v) if re.search('[.eE]', v) else int(v)
        if kind == 'ident':
            return {'true': True, 'false': False, 'null': None}.get(v, v)
        if kind == 'string':
            return v
        raise SyntaxError('%s: unexpected %r' % (self.file, v))

    def trait(self):
        """After '@': name and its value (True when it has none)."""
        _, name = self.next()
        name = name.split('#')[-1]
        if self.peek()[1] != '(':
            return name, True
        self.next()
        if self.peek()[1] == ')':
            self.next()
            return name, True
        if self.peek(1)[1] == ':':  # structured: key: value ...
            obj = {}
            while self.peek()[1] != ')':
                _, key = self.next()
                self.expect(':')
                obj[key] = self.value()
            self.next()
            return name, obj
        v = self.value()
        self.expect(')')
        return name, v

    def traits(self):
        got = {}
        while self.peek()[1] == '@':
            self.next()
            k, v = self.trait()
            got[k] = v
        return got

    def members(self, kind):
        self.expect('{')
        members = {}
        while self.peek()[1] != '}':
            tr = self.traits()
            _, name = self.next()
            if kind in ('enum', 'intEnum'):
                value = name
                if self.peek()[1] == '=':
                    self.next()
                    value = self.value()
                members[name] = {'target': 'Unit', 'traits': tr, 'value': value}
                continue
            self.expect(':')
            _, target = self.next()
            m = {'target': target.split('#')[-1], 'traits': tr}
            if self.peek()[1] == '=':
                self.next()
                m['default'] = self.value()
            members[name] = m
        self.next()
        return members

    def apply_traits(self, shape, traits):
        for key, kind in (('httpRequestTests', 'request'), ('httpResponseTests', 'response')):
            for case in traits.get(key, []):
                case = dict(case)
                case.update(kind=kind, shape=shape.split('#')[-1], file=self.file)
                self.out['cases'].append(case)

    def shape(self, kind, traits):
        _, name = self.next()
        name = name.split('#')[-1]
        if self.peek()[1] == 'with':
            raise SyntaxError('%s: mixins are not supported (%s)' % (self.file, name))
        shape = {'type': kind, 'traits': {k: v for k, v in traits.items()
                                          if k not in ('httpRequestTests', 'httpResponseTests')}}
        if kind in ('structure', 'union', 'list', 'set', 'map', 'enum', 'intEnum'):
            members = self.members(kind)
            if kind in ('list', 'set'):
                shape['member'] = members['member']
            elif kind == 'map':
                shape['key'], shape['value'] = members['key'], members['value']
            else:
                shape['members'] = members
        elif kind in ('operation', 'service', 'resource'):
            body = self.value()
            if kind == 'operation':
                self.out['operations'][name] = {k: body[k].split('#')[-1]
                                                for k in ('input', 'output') if k in body}
            if kind == 'service':
                self.out['service_version'] = body.get('version')
        self.out['shapes'][name] = shape
        self.apply_traits(name, traits)

    def run(self):
        while self.i < len(self.t):
            kind, v = self.peek()
            if v == '$version':
                self.next()
                self.expect(':')
                self.value()
            elif v == 'metadata':
                self.next()
                self.next()
                self.expect('=')
                self.value()
            elif v in ('namespace', 'use'):
                self.next()
                self.next()
            elif v == 'apply':
                self.next()
                _, target = self.next()
                if self.peek()[1] == '{':
                    self.next()
                    traits = self.traits()
                    self.expect('}')
                else:  # exactly one trait: the next '@' is the next shape's
                    self.expect('@')
                    k, v = self.trait()
                    traits = {k: v}
                self.apply_traits(target, traits)
            else:
                traits = self.traits()
                _, kind = self.next()
                self.shape(kind, traits)


def main(argv):
    out = {'service_version': None, 'shapes': {}, 'operations': {}, 'cases': []}
    for path in argv[2:]:
        with open(path, encoding='utf-8') as f:
            Parser(tokenize(f.read()), path.split('/ec2query/')[-1], out).run()
    for case in out['cases']:
        case['error'] = 'error' in out['shapes'].get(case['shape'], {}).get('traits', {})
    with open(argv[1], 'w', encoding='utf-8') as f:
        json.dump(out, f, indent=1, sort_keys=False)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
