// linli: progressive enhancement only; every core flow works without JavaScript.
document.addEventListener('submit', function (e) {
  var c = e.target.closest('form[data-confirm]');
  if (c && !window.confirm(c.getAttribute('data-confirm'))) { e.preventDefault(); return; }
  // A form that changes something is sent once per tap: on a slow mobile network residents
  // tapped 提交 again and filed the same report twice. Released after a while (or when the
  // page comes back from the browser's cache) in case the first send was lost.
  var f = e.target;
  if ((f.getAttribute('method') || '').toLowerCase() !== 'post') { return; }
  if (f.getAttribute('data-sent')) { e.preventDefault(); return; }
  f.setAttribute('data-sent', '1');
  setTimeout(function () { f.removeAttribute('data-sent'); }, 15000);
});
window.addEventListener('pageshow', function () {
  document.querySelectorAll('form[data-sent]').forEach(function (f) { f.removeAttribute('data-sent'); });
});

// Live inbox: refresh the case table when a notification arrives (server-sent events).
(function () {
  var live = document.getElementById('live');
  var box = document.getElementById('inbox');
  if (!live || !box || !window.EventSource) { return; }
  var es = new EventSource('/events');
  es.addEventListener('notification', function () {
    fetch(live.getAttribute('data-src'), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html) { box.innerHTML = html; } });
  });
})();
