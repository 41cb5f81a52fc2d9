// The area tree (county → township → village → terminal), for looking at
// (live state colours) and for picking an alert's targets.
import {h} from './dom.js';
import {t} from './i18n.js';
import {termState, stateLabel} from './model.js';

// areaTree draws the tree. With opts.picker, every area and terminal inside
// the user's areas has a checkbox; picked() returns {areas, terminals}
// without anything already covered by a picked area.
export function areaTree(areas, terminals, opts = {}) {
  const byArea = new Map();
  for (const term of terminals.values()) {
    if (term.status === 'revoked') continue;
    if (!byArea.has(term.area_code)) byArea.set(term.area_code, []);
    byArea.get(term.area_code).push(term);
  }
  for (const list of byArea.values()) list.sort((a, b) => a.name.localeCompare(b.name, 'zh-CN'));
  const boxes = []; // {input, kind, code, parents: [input]}

  const countUnder = (code) => {
    let n = 0, on = 0;
    const walk = (c) => {
      for (const term of byArea.get(c) || []) {
        n++;
        if (termState(term) !== 'offline') on++;
      }
      for (const k of areas.children(c)) walk(k.code);
    };
    walk(code);
    return {n, on};
  };

  const check = (kind, value, label, enabled, parents) => {
    const id = `pick-${kind}-${value}`;
    const input = h('input', {type: 'checkbox', id, value, 'data-kind': kind, disabled: !enabled});
    boxes.push({input, kind, value, parents});
    input.addEventListener('change', () => {
      sync();
      if (opts.onchange) opts.onchange();
    });
    return [input, h('label', {for: id, style: 'display:inline;font-weight:normal'}, label)];
  };

  const termItem = (term, parents) => {
    const st = termState(term);
    const label = h('span', {class: 'node', 'data-terminal': term.id},
      opts.picker ? term.name : h('a', {href: '#/terminals/' + term.id}, term.name), stateLabel(st));
    if (!opts.picker) return h('li', {}, label);
    return h('li', {}, h('span', {class: 'node'}, check('terminal', term.id, term.name, areas.inside(term.area_code), parents), stateLabel(st)));
  };

  const areaItem = (a, parents) => {
    const kids = areas.children(a.code);
    const terms = byArea.get(a.code) || [];
    const {n, on} = countUnder(a.code);
    const counts = h('span', {class: 'counts'}, t('tree.counts', {n, on}));
    let head, mine = null;
    if (opts.picker) {
      const parts = check('area', a.code, a.name, a.inside, parents);
      mine = parts[0];
      head = h('span', {class: 'node' + (a.inside ? '' : ' outside')}, parts, counts);
    } else {
      head = h('span', {class: 'node' + (a.inside ? '' : ' outside'), 'data-area': a.code}, a.name, counts);
    }
    const below = mine ? [...parents, mine] : parents;
    const list = h('ul', {}, kids.map((k) => areaItem(k, below)), terms.map((term) => termItem(term, below)));
    if (kids.length === 0 && terms.length === 0) return h('li', {}, head);
    // Villages fold away their terminals in the picker; the rest is open.
    const open = !(opts.picker && a.level === 'village') || (opts.open && opts.open === a.code);
    return h('li', {}, h('details', {open}, h('summary', {}, head), list));
  };

  function sync() {
    for (const b of boxes) {
      const covered = b.parents.some((p) => p.checked);
      if (covered) {
        b.input.checked = true;
        b.input.disabled = true;
      } else if (b.input.dataset.covered === '1' || b.input.disabled) {
        const enabled = b.kind === 'area' ? areas.inside(b.value) : areas.inside((terminals.get(b.value) || {}).area_code);
        if (b.input.dataset.covered === '1') b.input.checked = false;
        b.input.disabled = !enabled;
      }
      b.input.dataset.covered = covered ? '1' : '';
    }
  }

  const el = h('div', {class: 'tree' + (opts.picker ? ' picker' : ''), id: opts.id},
    h('ul', {}, areas.roots().map((a) => areaItem(a, []))));
  el.picked = () => {
    const out = {areas: [], terminals: []};
    for (const b of boxes) {
      if (!b.input.checked || b.input.dataset.covered === '1') continue;
      (b.kind === 'area' ? out.areas : out.terminals).push(b.value);
    }
    return out;
  };
  el.pick = (kind, value) => {
    const b = boxes.find((x) => x.kind === kind && x.value === value);
    if (b && !b.input.disabled) {
      b.input.checked = true;
      sync();
    }
  };
  el.clear = () => {
    for (const b of boxes) {
      b.input.checked = false;
      b.input.dataset.covered = '';
    }
    sync();
  };
  return el;
}

// updateStates redraws the state of terminals shown anywhere under root.
export function updateState(root, id, state) {
  for (const node of root.querySelectorAll(`[data-terminal="${CSS.escape(id)}"] .st`)) node.replaceWith(stateLabel(state));
}
