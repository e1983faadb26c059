// Resident site: fill the location from the browser when the resident allows it.
(function () {
  var b = document.getElementById('locate');
  if (!b || !navigator.geolocation) { return; }
  b.hidden = false;
  b.addEventListener('click', function () {
    var msg = document.getElementById('locmsg');
    msg.textContent = '正在定位…';
    navigator.geolocation.getCurrentPosition(function (p) {
      document.getElementById('lng').value = p.coords.longitude.toFixed(7);
      document.getElementById('lat').value = p.coords.latitude.toFixed(7);
      msg.textContent = '已获取位置（精度约 ' + Math.round(p.coords.accuracy) + ' 米）';
    }, function () { msg.textContent = '无法获取位置，请在地图上选择网格'; }, { enableHighAccuracy: true, timeout: 10000 });
  });
})();

// Resident site: show the questions of the chosen category only.
(function () {
  var sel = document.querySelector('#report select[name=category]');
  if (!sel) { return; }
  var show = function () {
    document.querySelectorAll('#report fieldset.attrs').forEach(function (f) {
      var on = f.getAttribute('data-cat') === sel.value;
      f.hidden = !on;
      f.querySelectorAll('input,select,textarea').forEach(function (i) { i.disabled = !on; });
    });
  };
  sel.addEventListener('change', show);
  show();
})();
