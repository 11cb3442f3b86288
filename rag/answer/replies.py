"""The fixed replies: declines (injection, off-topic), emergencies and refusals, in several languages.

Nothing here comes from a model: an emergency reply must be right every time, and a refusal must
say the same thing for the same reason.

Example:
    >>> EMERGENCY_TEXT["en"].startswith("If this is an emergency")
    True
    >>> refusal("es", ["FlashAttention-3"])
    'No encontré esto en los artículos indexados. Los artículos indexados no mencionan FlashAttention-3.'
"""

from __future__ import annotations

INJECTION_TEXT = ("I can't do that. I answer only from the indexed papers: I don't reveal my instructions, and I never "
                  "invent papers, quotes or citations. Ask me a question about the indexed papers.")
OFF_TOPIC_TEXT = ("That is outside what I cover: I answer questions about the indexed research papers (machine "
                  "learning, mostly multimodal models, benchmarks and datasets), with quotes and citations. "
                  "Ask me about a model, a dataset, a method or a result.")
EMERGENCY_TEXT = {
    "en": "If this is an emergency, call your local emergency number now (112 in Europe, 911 in the US and Canada, "
          "999 in the UK), or a poison control centre if someone swallowed something. If you are thinking about "
          "ending your life, please call or text a crisis line now (988 in the US) or your local emergency number. "
          "I only answer questions about research papers and cannot give medical advice.",
    "es": "Si es una emergencia, llame ahora al número de emergencias local (112 en Europa, 911 en EE. UU. y México) "
          "o a un centro de toxicología si alguien ingirió algo. Si piensa en quitarse la vida, llame ahora a una "
          "línea de crisis o al número de emergencias. Solo respondo preguntas sobre artículos de investigación.",
    "fr": "En cas d'urgence, appelez maintenant le numéro d'urgence local (112 en Europe, 15 ou 18 en France) ou un "
          "centre antipoison si quelqu'un a avalé quelque chose. Si vous pensez à mettre fin à vos jours, appelez "
          "maintenant une ligne d'écoute (3114 en France). Je réponds seulement à des questions sur des articles de recherche.",
    "de": "Im Notfall rufen Sie jetzt die örtliche Notrufnummer an (112 in Europa) oder den Giftnotruf, wenn jemand "
          "etwas verschluckt hat. Wenn Sie daran denken, sich das Leben zu nehmen, rufen Sie jetzt eine Krisenhotline "
          "an (in Deutschland 0800 111 0 111). Ich beantworte nur Fragen zu Forschungsartikeln.",
    "pt": "Se for uma emergência, ligue agora para o número de emergência local (112 na Europa, 192 ou 193 no Brasil) "
          "ou para um centro de intoxicações se alguém engoliu algo. Se está a pensar em pôr fim à vida, ligue agora "
          "para uma linha de apoio (188 no Brasil). Só respondo a perguntas sobre artigos de investigação.",
    "it": "Se è un'emergenza, chiami subito il numero di emergenza locale (112 in Europa) o un centro antiveleni se "
          "qualcuno ha ingerito qualcosa. Se pensa di togliersi la vita, chiami subito una linea di supporto o il 112. "
          "Rispondo solo a domande su articoli di ricerca.",
    "zh": "如果这是紧急情况，请立即拨打当地急救电话（中国大陆 120，欧洲 112，美国 911）；如有人误服药物或毒物，请联系中毒急救中心。"
          "如果您有轻生的念头，请立即拨打心理危机干预热线或当地急救电话。我只回答关于研究论文的问题，不能提供医疗建议。",
}


REFUSAL_TEXT = {  # the refusal in the languages the translator has a worked example for; others are translated
    "es": ("No encontré esto en los artículos indexados.", "Los artículos indexados no mencionan {}."),
    "fr": ("Je n'ai pas trouvé cela dans les articles indexés.", "Les articles indexés ne mentionnent pas {}."),
    "de": ("Ich habe das in den indexierten Artikeln nicht gefunden.", "Die indexierten Artikel erwähnen {} nicht."),
    "pt": ("Não encontrei isto nos artigos indexados.", "Os artigos indexados não mencionam {}."),
    "it": ("Non ho trovato questo negli articoli indicizzati.", "Gli articoli indicizzati non menzionano {}."),
    "zh": ("我在已索引的论文中没有找到这一点。", "已索引的论文没有提到 {}。"),
}


def refusal(language: str, missing: list[str] | None = None) -> str | None:
    """The refusal in ``language`` (None where there is no fixed wording), naming what is missing."""
    fixed = REFUSAL_TEXT.get(language)
    if fixed is None:
        return None
    return fixed[0] + (" " + fixed[1].format(", ".join(missing[:3])) if missing else "")
