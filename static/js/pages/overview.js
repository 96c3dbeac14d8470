/* Overview: counts, bars and the event feed are re-rendered after any live change. */
(function () {
  "use strict";
  if (!window.CiaoLive) return;
  CiaoLive.on("*", function () { CiaoLive.refreshFragment("overview", 600); });
})();
