from certportal.roles import Role

__all__ = ["Role"]
