/* Instance detail: state, host and error are patched from instance.updated; attachment
 * changes patch their row, and a VF change (migration) re-renders the network-status
 * table, which knows the VF's PCI address and host. The operations timeline is
 * re-rendered on operation.updated for this instance (each step of each operation) and
 * on instance.updated (its latest operation changed). */
(function () {
  "use strict";
  var root = document.getElementById("instance");
  if (!root || !window.CiaoLive) return;
  var instanceId = root.dataset.instanceId;

  function showDeleted() {
    CiaoLive.setState(document.querySelector("#instance-state [data-field=state]"), "deleted");
    document.getElementById("instance-deleted").hidden = false;
  }

  // Deleted while the socket was down: its fragments are gone (404).
  CiaoLive.onResync(function (statuses) {
    if (statuses.summary === 404) showDeleted();
  });

  CiaoLive.on("instance.updated", function (instance) {
    if (String(instance.id) !== instanceId) return;
    if (instance.deleted) {
      showDeleted();
      return;
    }
    CiaoLive.refreshFragment("operations");
    CiaoLive.setState(document.querySelector("#instance-state [data-field=state]"), instance.state);
    CiaoLive.setField(root, "host_name", instance.host_name);
    var netns = document.getElementById("instance-netns");
    if (netns) netns.textContent = instance.netns || "—";
    var errorBox = document.getElementById("instance-error");
    errorBox.hidden = !instance.error;
    CiaoLive.setField(errorBox, "error", instance.error);
    CiaoLive.refreshFragment("status");
  });

  CiaoLive.on("operation.updated", function (operation) {
    if (String(operation.instance) !== instanceId) return;
    CiaoLive.refreshFragment("operations");
  });

  CiaoLive.on("attachment.updated", function (attachment) {
    if (String(attachment.instance) !== instanceId) return;
    var row = document.querySelector('#network-status tr[data-attachment-id="' + attachment.id + '"]');
    if (!row || attachment.deleted || String(attachment.vf || "") !== (row.dataset.vfId || "")) {
      CiaoLive.refreshFragment("status");
      if (!row) return;
    }
    CiaoLive.setField(row, "ip", attachment.ip);
    CiaoLive.setField(row, "ip_source", attachment.ip_source);
    CiaoLive.setField(row, "ipv6", attachment.ipv6);
    CiaoLive.setField(row, "ipv6_source", attachment.ipv6_source);
    CiaoLive.setState(row.querySelector('[data-field="state"]'), attachment.state);
  });
})();
