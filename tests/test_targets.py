"""Targets N_r (DOMAIN §4): préfet default, agents, taux on a territory, article 5, remainder."""


from flux_opt.assiette.flux import compute_flux
from flux_opt.input.schema import load_instance
from flux_opt.assiette.targets import compute_targets

PARC = """
commune,epci,qpv,typologie,financement,logements,liberations
59350,200093201,non,T3,PLUS,600,60
59512,200093201,oui,T2,PLAI,400,40
"""
DEMANDE = """
reservataire,commune,epci,typologie,quartile,prioritaire,demandeurs
bailleur,59350,,T3,q1,non,10
"""


def targets_of(make_instance, reservataires, parc=PARC):
    folder = make_instance(parc=parc, reservataires=reservataires, demande=DEMANDE)
    instance = load_instance(folder)
    flux = compute_flux(instance)
    return flux, compute_targets(instance, flux)


def test_prefet_gets_30_of_100_including_agents(make_instance):
    # Ministry summary (seed 002): 100 dwellings released → the préfet places 30 households.
    flux, t = targets_of(make_instance, """
        id,nom,type,taux
        prefet,Préfet,prefet,
        agents,Agents,prefet_agents,
        bailleur,Bailleur,bailleur,
        """)
    assert flux.total == 100
    assert t.of("prefet") + t.of("agents") == 30
    assert (t.of("prefet"), t.of("agents")) == (25, 5)
    assert t.of("bailleur") == 70
    assert t.plafond_prefet == 30 and t.plafond_agents == 5


def test_collectivite_rate_applies_to_its_territory_and_article5_default(make_instance):
    _, t = targets_of(make_instance, """
        id,nom,type,territoire,taux,logements_reserves
        roubaix,Ville de Roubaix,collectivite,59512,0.20,
        al,Action Logement,action_logement,,,150
        bailleur,Bailleur,bailleur,,,
        """)
    assert t.of("roubaix") == 8  # 20 % of Roubaix's flux of 40
    assert t.of("al") == 15  # article 5: 150 reserved / 1 000 dwellings × 100
    assert t.of("bailleur") == 77
    row = t.table.set_index("id")
    assert row.at["al", "source"] == "article_5"
    assert row.at["roubaix", "plafond"] == 8


def test_targets_sum_exactly_to_the_flux_with_largest_remainder(make_instance):
    _, t = targets_of(make_instance, """
        id,nom,type,taux
        a,A,employeur,0.125
        b,B,employeur,0.125
        c,C,autre,0.125
        bailleur,Bailleur,bailleur,
        """, parc="""
        commune,epci,qpv,typologie,financement,logements,liberations
        59350,200093201,non,T3,PLUS,100,10
        """)
    # 1.25 each and bailleur 6.25: floors 1,1,1,6 leave one unit; all remainders tie at .25,
    # so it goes to the first réservataire in file order.
    assert list(t.table["cible"]) == [2, 1, 1, 6]


def test_logements_given_takes_precedence_over_taux(make_instance):
    _, t = targets_of(make_instance, """
        id,nom,type,taux,logements
        al,Action Logement,action_logement,0.5,12
        bailleur,Bailleur,bailleur,,
        """)
    assert t.of("al") == 12 and t.of("bailleur") == 88


def test_rounding_never_pushes_the_prefet_group_over_its_cap(make_instance):
    # C = 651: préfet 0.25 × 651 = 162.75, agents 0.05 × 651 = 32.55; cap rnd(0.30 × 651) = 195.
    _, t = targets_of(make_instance, """
        id,nom,type
        prefet,Préfet,prefet
        agents,Agents,prefet_agents
        bailleur,Bailleur,bailleur
        """, parc="""
        commune,epci,qpv,typologie,financement,logements,liberations
        59350,200093201,non,T3,PLUS,6510,651
        """)
    assert t.plafond_prefet == 195
    assert t.of("prefet") + t.of("agents") <= 195
    assert t.table["cible"].sum() == 651
