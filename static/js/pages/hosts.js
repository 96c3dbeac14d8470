/* Hosts: host state changes, VF ownership changes (instances and attachments moving)
 * and evacuations progressing (operation.updated) re-render the host cards. */
(function () {
  "use strict";
  if (!window.CiaoLive) return;
  // The evacuate/restore button depends on the state, so the card is re-rendered whole.
  CiaoLive.on("host.updated", function () { CiaoLive.refreshFragment("hosts"); });
  CiaoLive.on("attachment.updated", function () { CiaoLive.refreshFragment("hosts", 500); });
  CiaoLive.on("instance.updated", function () { CiaoLive.refreshFragment("hosts", 500); });
  CiaoLive.on("operation.updated", function () { CiaoLive.refreshFragment("hosts", 500); });
})();
