from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "certportal.api"
    label = "api"
    verbose_name = "REST API credentials"

    def ready(self) -> None:
        # API tokens and permission grants are cached per process (with Redis) while the
        # configuration generation holds: any change to tokens, users or guardian's
        # permission rows moves it (certportal.generation).
        from django.contrib.auth import get_user_model
        from django.db.models.signals import m2m_changed, post_delete, post_save
        from guardian.models import GroupObjectPermission, UserObjectPermission

        from certportal import generation
        from certportal.api.models import ApiToken

        user = get_user_model()
        for model in (ApiToken, user, UserObjectPermission, GroupObjectPermission):
            post_save.connect(generation.on_model_change, sender=model, weak=False)
            post_delete.connect(generation.on_model_change, sender=model, weak=False)
        m2m_changed.connect(generation.on_model_change, sender=user.groups.through, weak=False)
