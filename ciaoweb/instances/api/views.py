from django.db.models import Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from ciaoweb.core.api.scoping import TenantScopedMixin
from ciaoweb.instances import hotplug, services
from ciaoweb.instances.api.serializers import (
    AttachmentCreateSerializer,
    AttachmentSerializer,
    InstanceCreateSerializer,
    InstanceSerializer,
    MigrateSerializer,
    resolve_host,
)
from ciaoweb.instances.filtersets import AttachmentFilterSet, InstanceFilterSet
from ciaoweb.instances.models import Attachment, Instance
from ciaoweb.networks.models import Network
from ciaoweb.operations.api.serializers import prefetch_latest_operation


@extend_schema_view(
    list=extend_schema(description="A member sees its tenant's instances."),
    destroy=extend_schema(
        description=(
            "Asynchronous: 204 at once, then the instance shows `deleting` until its host's "
            "agent has released its VFs, and is gone (404) after."
        )
    ),
)
class InstanceViewSet(
    TenantScopedMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Instances cannot be edited: delete and create again, or migrate."""

    queryset = Instance.objects.select_related("host").prefetch_related(
        "attachments", prefetch_latest_operation()
    )
    serializer_class = InstanceSerializer
    filterset_class = InstanceFilterSet

    def get_serializer_class(self):
        return InstanceCreateSerializer if self.action == "create" else InstanceSerializer

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.action == "create" and not self.is_admin:
            context["tenant"] = self.requesting_tenant()
        return context

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if self.action == "create" and not self.is_admin:
            # A member may only name its own and shared networks; others do not exist.
            tenant = self.requesting_tenant()
            visible = Network.objects.filter(Q(tenant=tenant) | Q(shared=True))
            serializer.fields["networks"].child.fields["network"].queryset = visible
        return serializer

    @extend_schema(
        description=(
            "201 with `state: pending`; the instance's host plugs its interfaces and it turns "
            "`running` (or `error`). eth0 is the tenant's overlay `default`, then one "
            "interface per item of `networks` (at most 8), each a VF on an SR-IOV network. "
            "`host` and `tenant` are for cluster admins (403 for members; an admin must give "
            "`tenant`). No host, VF, IP or quota left is a 409."
        ),
        request=InstanceCreateSerializer,
        responses={201: InstanceSerializer},
    )
    def create(self, request, *args, **kwargs):
        self.deny_admin_only_fields("host", "tenant")
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        requests = [
            services.NetworkRequest(
                network=item["network"],
                mac=item.get("mac"),
                ip=item.get("ip"),
                ipv6=item.get("ipv6"),
                position=i,
            )
            for i, item in enumerate(data["networks"])
        ]
        instance = services.create_instance(
            tenant=data["tenant"],
            name=data["name"],
            kind=data["kind"],
            networks=requests,
            host=data.get("host"),
        )
        instance = self.get_queryset().get(pk=instance.pk)
        return Response(InstanceSerializer(instance).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        """Asynchronous: the instance shows `deleting` until the agent has released it."""
        services.delete_instance(instance)

    @extend_schema(
        summary="Migrate an instance",
        description=(
            "202 with `state: migrating`: the instance moves to `host` (cluster admins only) "
            "or to a host the scheduler picks, keeping its MACs and IPs. Only `running`, "
            "`stopped` and `error` instances migrate, one operation at a time (else 409)."
        ),
        request=MigrateSerializer,
        responses={202: InstanceSerializer},
    )
    @action(detail=True, methods=["post"])
    def migrate(self, request, pk=None):
        """Move to `host` (admins only) or to a host the scheduler picks."""
        self.deny_admin_only_fields("host")
        instance = self.get_object()
        body = MigrateSerializer(data=request.data)
        body.is_valid(raise_exception=True)  # a list or a non-string host is a 400
        value = body.validated_data.get("host")
        target = None
        if value:
            try:
                target = resolve_host(value)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"host": exc.detail}) from None
        services.migrate_instance(instance, target)
        instance = self.get_queryset().get(pk=instance.pk)
        return Response(InstanceSerializer(instance).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Hot-plug an interface",
        description=(
            "202 with the new attachment, `state: pending`: the instance's host plugs a VF "
            "of the network's physnet into the running instance as its next `ethN`, with "
            "`mac` (default: a generated one) and, on a `controller` network, `ip` (default: "
            "the lowest free address); the attachment turns `active` once it is up with its "
            "address (a container's by our DHCP client, a VM's guest asks itself). Follow it "
            "in `operations/?instance=<id>&kind=attach`. A network unknown to the requester "
            "is a 404. 409: the instance is not `running` or has an operation in progress, "
            "its host has no free VF on the physnet, the tenant's `vfs` quota is used up, or "
            "the instance has 8 secondary interfaces already; nothing is created then."
        ),
        request=AttachmentCreateSerializer,
        responses={202: AttachmentSerializer},
    )
    @action(detail=True, methods=["post"], url_path="attachments")
    def attach(self, request, pk=None):
        """Hot-plug: one VF on `network` into the running instance."""
        instance = self.get_object()
        body = AttachmentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        attachment = hotplug.attach_network(
            instance,
            self._usable_network(data["network"]),
            mac=data.get("mac"),
            ip=data.get("ip"),
            ipv6=data.get("ipv6"),
        )
        attachment = Attachment.objects.get(pk=attachment.pk)
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_202_ACCEPTED)

    def _usable_network(self, network_id) -> Network:
        """A network the requester may see: a member's own and shared ones (anything else
        is as unknown as a random id, 404); a cluster admin's any (the service refuses one
        the instance's tenant may not use)."""
        networks = Network.objects.all()
        if not self.is_admin:
            tenant = self.requesting_tenant()
            networks = networks.filter(Q(tenant=tenant) | Q(shared=True))
        network = networks.filter(pk=network_id).first()
        if network is None:
            raise NotFound(f"network {network_id} does not exist")
        return network


@extend_schema_view(
    list=extend_schema(description="The interfaces of the tenant's instances."),
    destroy=extend_schema(
        summary="Hot-unplug an interface",
        description=(
            "Asynchronous: 202 with the attachment, `state: releasing`; the instance's host "
            "unplugs the interface and resets its VF to the state it saved, then the VF is "
            "free, the address and the DHCP reservation are released and the attachment is "
            "gone (404). The primary overlay interface (eth0) cannot be removed (400). 409: "
            "the instance has an operation in progress or is not settled (running, stopped, "
            "error)."
        ),
        responses={202: AttachmentSerializer},
    ),
)
class AttachmentViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Attachment.objects.select_related("instance", "network")
    serializer_class = AttachmentSerializer
    filterset_class = AttachmentFilterSet
    tenant_lookup = "instance__tenant"
    extra_error_codes = {"destroy": (400,)}  # eth0 (see core/api/schema.py)

    def destroy(self, request, *args, **kwargs):
        """Hot-unplug: 202, the detach operation unplugs it."""
        attachment = hotplug.detach_attachment(self.get_object())
        attachment = self.get_queryset().get(pk=attachment.pk)
        return Response(AttachmentSerializer(attachment).data, status=status.HTTP_202_ACCEPTED)
