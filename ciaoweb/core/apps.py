from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "ciaoweb.core"
    label = "core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from ciaoweb.core.sqlite import on_connection_created

        # SQLite files 0600 (they hold password hashes and tokens).
        connection_created.connect(on_connection_created, dispatch_uid="ciao-sqlite-0600")
