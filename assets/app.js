// linli: progressive enhancement only; every core flow works without JavaScript.
document.addEventListener('submit', function (e) {
  var f = e.target.closest('form[data-confirm]');
  if (f && !window.confirm(f.getAttribute('data-confirm'))) { e.preventDefault(); }
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
