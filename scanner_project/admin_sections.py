"""Read-only sections on a saved object's admin page (pause record, audit trail)."""


def page_section(title: str, fields: tuple[str, ...], *, first: bool = False, permission: str | None = None) -> type:
    """A ModelAdmin mixin adding ``fields`` (read-only methods of the admin) as
    a section titled ``title``: after the first fieldset, or at the end.

    A section shows another model's data, so it is shown only to users with
    ``permission`` ("app_label.view_model"). A section declared without one
    takes the permission the ModelAdmin's ``section_permissions`` gives its
    title; with neither, it is shown to nobody (fail closed).
    """

    def may_see(model_admin, request, obj) -> bool:
        needed = permission or getattr(model_admin, "section_permissions", {}).get(title)
        return obj is not None and obj.pk is not None and needed is not None and request.user.has_perm(needed)

    class PageSection:
        section_title = title
        section_permission = permission

        def get_readonly_fields(self, request, obj=None):
            # Only when shown: an admin without fieldsets lists every read-only field.
            shown = may_see(self, request, obj)
            return (*super().get_readonly_fields(request, obj), *(fields if shown else ()))

        def get_fieldsets(self, request, obj=None):
            fieldsets = super().get_fieldsets(request, obj)
            if not may_see(self, request, obj):
                return fieldsets
            # Without declared fieldsets Django's default one lists these fields too.
            fieldsets = [(name, {**options, "fields": [f for f in options["fields"] if f not in fields]})
                         for name, options in fieldsets]
            section = (title, {"fields": fields})
            return (*fieldsets[:1], section, *fieldsets[1:]) if first else (*fieldsets, section)

    PageSection.__name__ = f"{title.title().replace(' ', '')}Section"
    return PageSection
