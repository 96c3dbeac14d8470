/* Topology: any change that can move a VF or a host re-renders the server-side SVG. */
(function () {
  "use strict";
  if (!window.CiaoLive) return;
  ["instance.updated", "attachment.updated", "host.updated"].forEach(function (type) {
    CiaoLive.on(type, function () { CiaoLive.refreshFragment("svg", 400); });
  });
})();
