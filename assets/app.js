// linli: progressive enhancement only; every core flow works without JavaScript.
document.addEventListener('submit', function (e) {
  var f = e.target.closest('form[data-confirm]');
  if (f && !window.confirm(f.getAttribute('data-confirm'))) { e.preventDefault(); }
});
