// Carrier console: progressive enhancement only. Every page works without
// this file; with it, filters apply without a reload, the delivery log and
// a delivery's attempts tail live over server-sent events, and a running
// bulk retry refreshes itself. Nothing from the server is inserted as HTML.
(function () {
  'use strict';
  var body = document.body;
  var prefix = body.dataset.prefix || '';

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  // Filters: submit on change, replace the results, keep the URL shareable.
  var form = document.querySelector('form[data-live]');
  var results = form && document.getElementById(form.dataset.live);
  function query() {
    var params = new URLSearchParams(new FormData(form));
    return params.toString();
  }
  var latest = 0; // answers can arrive out of order: only the newest request's is shown
  function refresh() {
    var q = query();
    var seq = ++latest;
    fetch(form.action + '?' + q + '&partial=1', { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        if (seq !== latest) return;
        var doc = new DOMParser().parseFromString(html, 'text/html');
        results.replaceChildren.apply(results, Array.prototype.slice.call(doc.body.childNodes));
        history.replaceState(null, '', form.action + '?' + q);
        if (tail && tail.checked) startTail();
      })
      .catch(function () { form.submit(); });
  }
  if (form && results) {
    form.addEventListener('change', function (e) { if (e.target.id !== 'tail') refresh(); });
    form.addEventListener('submit', function (e) { e.preventDefault(); refresh(); });
  }

  // Live tail of the delivery log.
  var tail = document.getElementById('tail');
  var source = null;
  function startTail() {
    if (source) source.close();
    source = new EventSource(prefix + '/deliveries/tail?' + query());
    source.addEventListener('delivery', function (e) {
      var d = JSON.parse(e.data);
      var tbody = document.querySelector('#log tbody');
      if (!tbody) return;
      var empty = tbody.querySelector('tr.empty');
      if (empty) empty.remove();
      var tr = el('tr', null, d.state + ' new');
      tr.dataset.id = d.id;
      var a = el('a', d.created); a.href = d.url;
      var td = el('td'); td.appendChild(a); tr.appendChild(td);
      tr.appendChild(el('td', d.subscription));
      tr.appendChild(el('td', d.type));
      var st = el('td'); st.appendChild(el('span', d.state, 'badge ' + d.state)); tr.appendChild(st);
      tr.appendChild(el('td', d.attempts));
      tr.appendChild(el('td', d.status || '—'));
      tr.appendChild(el('td', d.error, 'err'));
      tbody.insertBefore(tr, tbody.firstChild);
    });
  }
  if (tail) {
    tail.addEventListener('change', function () {
      if (tail.checked) startTail(); else if (source) { source.close(); source = null; }
    });
  }

  // A delivery's attempts, live.
  var delivery = document.getElementById('delivery');
  if (delivery) {
    var list = document.getElementById('attempts');
    var es = new EventSource(prefix + '/deliveries/' + encodeURIComponent(delivery.dataset.id) + '/stream?seen=' + delivery.dataset.seen);
    es.addEventListener('attempt', function (e) {
      var a = JSON.parse(e.data);
      var none = document.getElementById('no-attempts');
      if (none) none.remove();
      var li = el('li', null, 'attempt new ' + a['class']);
      li.appendChild(el('b', '#' + a.number));
      var text = ' ' + a.at + ' · ' + (a.status ? 'HTTP ' + a.status : 'no answer') + ' · ' + a.duration_ms + ' ms';
      if (a.error_code) text += ' · ' + a.error_code + ' ' + a.error_message;
      li.appendChild(document.createTextNode(text));
      if (a.headers) li.appendChild(el('pre', a.headers, 'response headers'));
      if (a.response) li.appendChild(el('pre', a.response, 'response'));
      list.appendChild(li);
    });
    es.addEventListener('state', function (e) {
      var s = JSON.parse(e.data);
      var badge = document.getElementById('state');
      badge.textContent = s.state; badge.className = 'badge ' + s.state;
      document.getElementById('next-attempt').textContent = s.next_attempt || '—';
    });
  }

  // Copy as curl.
  var copy = document.getElementById('copy-curl');
  if (copy) {
    copy.addEventListener('click', function () {
      var text = document.getElementById(copy.dataset.target).textContent;
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(function () { copy.textContent = 'Copied'; });
    });
  }

  // A running bulk retry refreshes itself.
  var job = document.getElementById('job');
  if (job && job.dataset.finished !== 'true') setTimeout(function () { location.reload(); }, 1000);
}());
