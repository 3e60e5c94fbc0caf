"""Admin actions that first ask for a few values (a form on its own page)."""

from __future__ import annotations

from typing import Callable

from django import forms
from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse


def action_with_form(modeladmin, request, queryset, *, form_class: type[forms.Form], action: str, title: str,
                     intro: str, submit: str, apply: Callable[[dict], str]):
    """Show ``form_class`` for the selected rows; once it is valid, ``apply``
    (given the cleaned data) does the work and returns the success message.
    A ValidationError from ``apply`` is shown on the form, naming its field."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        try:
            message = apply(form.cleaned_data)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            modeladmin.message_user(request, message, messages.SUCCESS)
            return None
    return TemplateResponse(request, "admin/action_form.html", {
        **modeladmin.admin_site.each_context(request), "title": title, "intro": intro, "form": form,
        "schedules": queryset, "action_checkbox_name": ACTION_CHECKBOX_NAME, "opts": modeladmin.model._meta,
        "action": action, "submit": submit,
    })
