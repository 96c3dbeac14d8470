class MembershipRole:
    MEMBER = "member"
    ADMIN = "admin"  # may manage its tenant's members; not a cluster admin

    CHOICES = [(MEMBER, "Member"), (ADMIN, "Tenant admin")]
